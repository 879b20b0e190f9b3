"""Signature discovery and validation (PAdES, CAdES, XAdES) under ETSI EN 319 102-1."""
