"""XAdES B-LTA: ``xadesv141:ArchiveTimeStamp`` validation (ETSI EN 319 132-1 §5.5.2).

The timestamp's input is computed here, in the order §5.5.2.2 gives, every XML part canonicalised with
the method the timestamp names (``ds:CanonicalizationMethod``, inclusive C14N 1.0 when absent):
1. each ds:Reference of SignedInfo, in order: the data it designates after its transforms; an octet stream
   is taken as is (a detached file, or the output of a final canonicalisation/base64 transform), a node
   set is canonicalised;
2. ds:SignedInfo, ds:SignatureValue and ds:KeyInfo (when present);
3. every child of UnsignedSignatureProperties that precedes this ArchiveTimeStamp, in document order;
4. every ds:Object of the signature except the one holding xades:QualifyingProperties.
The RFC 3161 token is then checked by ``xades_timestamp.validate_timestamp`` (pyhanko's EN 319 102-1 §5.4
timestamp validation: imprint, CMS signature, TSA chain to the trust anchors).

When the input cannot be computed faithfully (a Reference whose transforms leave a node set that signxml
canonicalised with another method than the timestamp's) the timestamp is *not* taken as verified: the
caller reports that, never B-LTA.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree  # type: ignore[import-untyped, unused-ignore]  # no stubs in the venv
from pyhanko_certvalidator import ValidationContext

from bidproc.signature.report import Indication, SubIndication
from bidproc.signature.xades.c14n import C14N_10, C14N_11, canonicalise
from bidproc.signature.xades.ltv import NS_ALL, USP
from bidproc.signature.xades.timestamps import C14N_METHODS, TimestampOutcome, timestamp_method, validate_timestamp

ARCHIVE_TIMESTAMP = f"{{{NS_ALL['xadesv141']}}}ArchiveTimeStamp"
_BY_ID = "//*[@*[local-name()='Id' or local-name()='ID' or local-name()='id'] = $v]"
_OCTET_TRANSFORMS = {*C14N_METHODS, "http://www.w3.org/2000/09/xmldsig#base64"}


@dataclass(frozen=True)
class ReferenceData:
    """One ds:Reference as verified: its URI, and the octets signxml digested for it."""

    uri: str
    digested: bytes
    detached: bool


class InputNotComputable(Exception):
    pass


def find_archive_timestamps(qualifying_properties: etree._Element) -> list[etree._Element]:
    return list(qualifying_properties.findall(f"{USP}/xadesv141:ArchiveTimeStamp", NS_ALL))


def _reference_octets(tree: etree._ElementTree, reference: etree._Element, data: ReferenceData, method: str) -> bytes:
    if data.detached:  # another file of the bid: an octet stream, taken as is after its transforms
        return data.digested
    transforms = [str(t.get("Algorithm")) for t in reference.findall("ds:Transforms/ds:Transform", NS_ALL)]
    if transforms and transforms[-1] in _OCTET_TRANSFORMS:
        return data.digested  # the transforms end in octets: exactly what was digested
    if not transforms and data.uri.startswith("#"):
        targets = tree.xpath(_BY_ID, v=data.uri[1:])
        if len(targets) != 1:
            raise InputNotComputable(f"reference {data.uri} does not resolve to exactly one element")
        return canonicalise(targets[0], method)
    # A node set left by the transforms was turned into octets with C14N 1.0 (XML-DSig's default, see
    # xades_core); C14N 1.1 gives the same bytes for the whole document (no ancestor to inherit from).
    if method == C14N_10 or (method == C14N_11 and data.uri == ""):
        return data.digested
    raise InputNotComputable(
        f"reference {data.uri or '(whole document)'} yields a node set and the archive timestamp asks for {method}"
    )


def archive_timestamp_input(
    tree: etree._ElementTree,
    signature: etree._Element,
    qualifying_properties: etree._Element,
    archive_timestamp: etree._Element,
    references: Sequence[ReferenceData],
) -> bytes:
    """The octets the ArchiveTimeStamp's message imprint must digest (EN 319 132-1 §5.5.2.2)."""
    method = timestamp_method(archive_timestamp)
    if method not in C14N_METHODS:
        raise InputNotComputable(f"unsupported canonicalisation method {method!r}")
    chunks: list[bytes] = []
    reference_elements = signature.findall("ds:SignedInfo/ds:Reference", NS_ALL)
    if len(reference_elements) != len(references):
        raise InputNotComputable("the verified references do not match SignedInfo")
    for element, data in zip(reference_elements, references, strict=True):
        chunks.append(_reference_octets(tree, element, data, method))
    for name in ("ds:SignedInfo", "ds:SignatureValue", "ds:KeyInfo"):
        found = signature.findall(name, NS_ALL)
        if len(found) > 1 or (not found and name != "ds:KeyInfo"):
            raise InputNotComputable(f"expected one {name}")
        chunks.extend(canonicalise(e, method) for e in found)
    container = archive_timestamp.getparent()
    for sibling in container:
        if sibling is archive_timestamp:
            break
        if isinstance(sibling.tag, str):  # elements only: comments and processing instructions are no property
            chunks.append(canonicalise(sibling, method))
    for obj in signature.findall("ds:Object", NS_ALL):
        if qualifying_properties.getparent() is not obj:
            chunks.append(canonicalise(obj, method))
    return b"".join(chunks)


async def validate_archive_timestamp(
    tree: etree._ElementTree,
    signature: etree._Element,
    qualifying_properties: etree._Element,
    archive_timestamp: etree._Element,
    references: Sequence[ReferenceData],
    context: ValidationContext,
) -> TimestampOutcome:
    try:
        source = archive_timestamp_input(tree, signature, qualifying_properties, archive_timestamp, references)
    except InputNotComputable as exc:
        return TimestampOutcome(
            False, Indication.INDETERMINATE, SubIndication.GENERIC, None, None, f"input not computable: {exc}"
        )
    mismatch = "message imprint does not match the signature and properties it archives (altered after stamping?)"
    return await validate_timestamp(archive_timestamp, source, context, mismatch)
