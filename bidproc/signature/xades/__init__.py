"""XAdES (ETSI EN 319 132-1): XML signatures, checked with signxml/lxml and EN 319 102-1's time logic.

`validator` is the entry point (`validate_xades`); `core`, `verifier`, `manifest` and `c14n` do XML-DSig
core validation, `checks` and `poe_time` the AdES rules, `timestamps`, `ltv` and `archive` the levels.
"""
