"""ASiC-E with CAdES (ETSI EN 319 162-1 §4.4.2): the signature signs an ASiCManifest, which lists each
signed member with its digest. The CMS part is plain CAdES; the manifest check is hand-written
(no library here reads ASiC manifests)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from urllib.parse import unquote

from lxml import etree

from bidproc.errors import Warning_

ASIC_NS = "http://uri.etsi.org/02918/v1.2.1#"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
DIGESTS = {
    "http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
}
# The manifest's digests are what binds the signature to each member; SHA-1 collisions are practical, so
# a SHA-1 reference binds nothing (ETSI TS 119 312), as pyhanko refuses SHA-1 for the CMS digest itself.
WEAK_DIGESTS = {"http://www.w3.org/2000/09/xmldsig#sha1": "sha1"}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


MANIFEST = Warning_.ASIC_MANIFEST.value


def manifest_problems(manifest: bytes, members: Mapping[str, bytes]) -> tuple[list[str], list[str], list[str]]:
    """(members the manifest covers, problems, references under a weak digest): every reference must
    exist and match its digest; one under SHA-1 covers nothing, whether it matches or not."""
    if b"<!DOCTYPE" in manifest or b"<!ENTITY" in manifest:
        return [], [f"{MANIFEST}: DTDs are not allowed"], []
    try:
        root = etree.fromstring(manifest, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        return [], [f"{MANIFEST}: not well-formed ({exc})"], []
    covered: list[str] = []
    problems: list[str] = []
    weak: list[str] = []
    for ref in root.iter(f"{{{ASIC_NS}}}DataObjectReference"):
        uri = unquote(ref.get("URI", ""))
        method = ref.find(f"{{{DS_NS}}}DigestMethod")
        value = ref.find(f"{{{DS_NS}}}DigestValue")
        algorithm = method.get("Algorithm", "") if method is not None else ""
        algo = DIGESTS.get(algorithm)
        if algorithm in WEAK_DIGESTS:
            weak.append(f"{MANIFEST}: {uri!r} is referenced under {WEAK_DIGESTS[algorithm]}, not an acceptable digest")
        elif uri not in members:
            problems.append(f"{MANIFEST}: {uri!r} is not in the container")
        elif algo is None or value is None or value.text is None:
            problems.append(f"{MANIFEST}: {uri!r} has no usable digest")
        elif hashlib.new(algo, members[uri]).digest() != base64.b64decode(value.text.strip()):
            problems.append(f"{MANIFEST}: digest of {uri!r} does not match")
        else:
            covered.append(uri)
    return covered, problems, weak
