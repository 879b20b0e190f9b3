"""Canonical XML 1.0 and 1.1 of an element taken out of its document (XML-DSig references, SignedInfo).

lxml gives inclusive C14N 1.0 and exclusive C14N, and it canonicalises an element that is not the root
as if the element had no ancestors: the ``xml:*`` attributes it inherits are dropped. lxml does not expose
libxml2's C14N 1.1 mode, and signxml renders 1.1 with lxml's 1.0. Both standards say what an element
canonicalised apart from its ancestors (the apex of a document subset) must carry, and that is the only
place where they differ for a whole subtree; that part is hand-written here:

- Canonical XML 1.0 §2.4: the apex carries every ``xml:*`` attribute of its omitted ancestors (the nearest
  value wins) that it does not declare itself;
- Canonical XML 1.1 §2.4: only the simple inheritable attributes ``xml:lang`` and ``xml:space`` are
  carried; ``xml:id`` never is; ``xml:base`` is fixed up, the omitted ancestors' values joined outermost
  first with the apex's own (RFC 3986 §5.2 resolution, done by ``urllib.parse.urljoin``; for a relative
  base it keeps the relative form, as the C14N 1.1 join does).
The rest (namespace axis, attribute order, escaping) is lxml's C14N 1.0, run over a standalone copy of the
element that carries those attributes; for a whole subtree it is the same in 1.0 and 1.1.
Exclusive C14N imports no ``xml:*`` attribute (Exclusive XML Canonicalization §3), so lxml's result stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urljoin

from lxml import etree  # type: ignore[import-untyped, unused-ignore]  # no stubs in the venv

from bidproc.signature.xades.xml_safety import safe_parser

C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_11 = "http://www.w3.org/2006/12/xml-c14n11"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
WITH_COMMENTS = "#WithComments"
# (exclusive, with_comments, version) per canonicalisation URI
METHODS: dict[str, tuple[bool, bool, str]] = {
    C14N_10: (False, False, "1.0"),
    C14N_10 + WITH_COMMENTS: (False, True, "1.0"),
    C14N_11: (False, False, "1.1"),
    C14N_11 + WITH_COMMENTS: (False, True, "1.1"),
    EXC_C14N: (True, False, "exc"),
    EXC_C14N + "WithComments": (True, True, "exc"),
}
XML_NS = "http://www.w3.org/XML/1998/namespace"
_BASE, _LANG, _SPACE = f"{{{XML_NS}}}base", f"{{{XML_NS}}}lang", f"{{{XML_NS}}}space"

XmlAttributes = dict[str, str]


def xml_attributes(element: etree._Element) -> XmlAttributes:
    return {str(k): str(v) for k, v in element.attrib.items() if str(k).startswith(f"{{{XML_NS}}}")}


def ancestor_xml_attributes(element: etree._Element) -> list[XmlAttributes]:
    """The ``xml:*`` attributes of each ancestor of ``element``, outermost first."""
    return [xml_attributes(a) for a in reversed(list(element.iterancestors()))]


def inherited(chain: Sequence[XmlAttributes], own: XmlAttributes, version: str) -> XmlAttributes:
    """The ``xml:*`` attributes the apex must carry, ``own`` included, per C14N ``version`` ("1.0"/"1.1")."""
    if version == "1.0":
        merged: XmlAttributes = {}
        for attributes in chain:
            merged.update(attributes)
        return {**merged, **own}
    result = dict(own)
    for name in (_LANG, _SPACE):
        for attributes in chain:  # outermost first: the nearest declaration is the last one seen
            if name in attributes and name not in own:
                result[name] = attributes[name]
    bases = [a[_BASE] for a in chain if _BASE in a]
    if bases:
        joined = bases[0]
        for value in [*bases[1:], *([own[_BASE]] if _BASE in own else [])]:
            joined = urljoin(joined, value)
        result[_BASE] = joined
    return result


def canonicalise(
    element: etree._Element,
    method: str,
    inclusive_ns_prefixes: Sequence[str] | None = None,
    outer: Sequence[XmlAttributes] = (),
) -> bytes:
    """``element`` (with its subtree) canonicalised with ``method``, as the apex of a document subset.

    ``outer``: the ``xml:*`` attributes of ancestors ``element`` lost before it reached us (signxml works on
    copies), outermost first; the ancestors it still has in its tree are read from it.
    """
    if method not in METHODS:
        raise ValueError(f"unsupported canonicalisation method {method!r}")
    exclusive, with_comments, version = METHODS[method]
    chain = [*outer, *ancestor_xml_attributes(element)]
    if exclusive or not any(chain):
        return bytes(
            etree.tostring(
                element,
                method="c14n",
                exclusive=exclusive,
                with_comments=with_comments,
                inclusive_ns_prefixes=list(inclusive_ns_prefixes) if inclusive_ns_prefixes else None,
            )
        )
    # A standalone copy keeps the namespaces in scope (lxml declares them on the copy's root).
    copy = etree.fromstring(etree.tostring(element, with_tail=False), parser=safe_parser())
    for name, value in inherited(chain, xml_attributes(element), version).items():
        copy.set(name, value)
    if version == "1.1" and _BASE in copy.attrib and not copy.get(_BASE):
        del copy.attrib[_BASE]  # an empty joined base carries nothing
    return bytes(etree.tostring(copy, method="c14n", exclusive=False, with_comments=with_comments))
