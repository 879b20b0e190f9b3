"""Archive: object storage, evidence packages (sealed, timestamped, WORM), retention, RFC 4998
records, SEDA export.

Flow: api -> desk -> pipeline -> intake -> signature -> encryption -> [archive] (the last stage).
"""
