"""CAdES (ETSI EN 319 122-1) and ASiC containers: CMS signatures, checked with pyhanko.

`validator` is the entry point; `format` parses the CMS structure first, `ltv` reads embedded validation
data (B-LT), `archive` the archive timestamps (B-LTA), `asic` opens ASiC-S/E containers.
"""
