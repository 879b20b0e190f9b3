"""Parsing untrusted XML (bid files) without letting it reach the network, expand entities or blow up.

lxml is configured to refuse what an XML signature never needs: DTDs (so no entity bombs, no external
entities, no XXE), network access, and libxml2's "huge tree" mode. On top of that we bound the input size
and the nesting depth ourselves, and we reject any DOCTYPE outright instead of merely not expanding it:
a signed bid file has no business carrying one, and refusing it keeps signxml's own DTD check (which
raises late, after parsing) from ever being the line of defence.
"""

from __future__ import annotations

import io
import re
from collections import Counter

from lxml import etree  # type: ignore[import-untyped, unused-ignore]  # no stubs in the venv

from bidproc.errors import UnsafeXML

__all__ = ["UnsafeXML", "duplicate_ids", "parse_untrusted", "safe_parser"]

# The local names signxml (and XML-DSig practice) treat as element identifiers; ``xml:id`` has local
# name ``id``. An attribute in any namespace with one of these names counts, as in signxml's resolver.
ID_ATTRIBUTE_NAMES = frozenset({"Id", "ID", "id"})

# "<!DOCTYPE" in UTF-8/ASCII-compatible encodings and in UTF-16 (either byte order). A cheap pre-check
# so a DOCTYPE is refused before libxml2 spends any time on its internal subset (whose parameter entities
# it would expand). Only a match in the prolog counts: the same characters inside a CDATA section or a
# comment after the root element starts are content, not a declaration.
_DOCTYPE = re.compile(
    rb"<!DOCTYPE|<\x00!\x00D\x00O\x00C\x00T\x00Y\x00P\x00E|\x00<\x00!\x00D\x00O\x00C\x00T\x00Y\x00P\x00E"
)
_ELEMENT_START = re.compile(rb"<[A-Za-z_:]|<\x00[A-Za-z_:]\x00|\x00<\x00[A-Za-z_:]")


def _doctype_in_prolog(data: bytes) -> bool:
    found = _DOCTYPE.search(data)
    return found is not None and _ELEMENT_START.search(data, 0, found.start()) is None


def safe_parser() -> etree.XMLParser:
    """The one parser configuration for untrusted XML; also handed to signxml for its own re-parsing."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,  # whitespace is signed content: never alter it
    )


def parse_untrusted(data: bytes, *, max_bytes: int, max_depth: int) -> etree._ElementTree:
    """Parse ``data`` or raise :class:`UnsafeXML`; streams through iterparse to stop early on depth."""
    if len(data) > max_bytes:
        raise UnsafeXML(f"XML is {len(data)} bytes, more than the limit of {max_bytes}")
    if _doctype_in_prolog(data):
        raise UnsafeXML("XML carries a DOCTYPE declaration (DTDs and entities are refused)")
    depth = 0
    root: etree._Element | None = None
    try:
        events = etree.iterparse(
            io.BytesIO(data),
            events=("start", "end"),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_blank_text=False,
        )
        for event, element in events:
            if event == "start":
                depth += 1
                if depth > max_depth:
                    raise UnsafeXML(f"XML nesting deeper than the limit of {max_depth}")
                if root is None:
                    root = element
            else:
                depth -= 1
    except etree.XMLSyntaxError as exc:
        raise UnsafeXML(f"XML is not well-formed: {exc}") from exc
    if root is None:
        raise UnsafeXML("XML has no root element")
    tree = root.getroottree()
    # Belt and braces: the byte scan above cannot see every encoding lxml accepts.
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise UnsafeXML("XML carries a DOCTYPE declaration (DTDs and entities are refused)")
    if any(True for _ in root.iter(etree.Entity)):
        raise UnsafeXML("XML contains entity references")
    return tree


def duplicate_ids(root: etree._Element) -> list[str]:
    """Identifier values carried by more than one element: the signature-wrapping precondition."""
    counts: Counter[str] = Counter()
    for element in root.iter(etree.Element):
        for name, value in element.attrib.items():
            if etree.QName(name).localname in ID_ATTRIBUTE_NAMES:
                counts[str(value)] += 1
    return sorted(value for value, n in counts.items() if n > 1)
