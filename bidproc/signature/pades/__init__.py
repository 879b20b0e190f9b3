"""PAdES (ETSI EN 319 142-1): PDF signatures, checked with pyhanko.

`validator` is the entry point; `byte_ranges`, `tail`, `compare`, `rawpdf` and `modifications` look at the
PDF structure (what changed after signing, what a reader would show); `levels` names the baseline level.
"""
