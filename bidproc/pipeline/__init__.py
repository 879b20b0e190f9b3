"""The queue and the actors that carry a bid through intake, signature, encryption and archive; each
stage's result is a typed value of :mod:`bidproc.pipeline.outcomes`.

Flow: api -> desk -> [pipeline] -> intake -> signature -> encryption -> archive (actors only wire the stages together).
"""
