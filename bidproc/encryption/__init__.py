"""Encryption of bid content: per-bid data keys (chunked AES-256-GCM) while the pipeline works, then
the encryption stage seals everything to the tender's opening keys (CMS AuthEnvelopedData) until the
opening.

Flow: api -> desk -> pipeline -> intake -> signature -> [encryption] -> archive.
"""
