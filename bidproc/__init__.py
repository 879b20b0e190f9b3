"""bidproc: receipt, scanning, signature validation, sealing and archiving of electronic bids."""

__version__ = "0.1.0"
