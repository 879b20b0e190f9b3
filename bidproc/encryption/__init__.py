"""Encryption of bid content at rest: per-bid data keys, chunked AES-256-GCM, key wrapping."""
