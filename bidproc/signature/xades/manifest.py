"""ds:Manifest references and what a XAdES signature really covers (signature wrapping through Objects).

XML-DSig core validation (XML-DSig 1.1 §3.2, §5.1) digests a ``ds:Manifest`` like any other element but does
not check the references it lists: a signature over a manifest that names a decoy, or names nothing that
exists, passes core validation while the document a reader sees is unsigned. EN 319 102-1 (and EU DSS)
answer INDETERMINATE/SIGNED_DATA_NOT_FOUND unless the manifest's references are resolved, verified, and
cover the content; TOTAL_FAILED/HASH_FAILURE when a manifest reference's digest does not match.

Each manifest reference is resolved, transformed, canonicalised and digest-checked by signxml's own
reference processing (the verifier's ``_verify_reference``, passed in as ``verify_reference``), so SignedInfo
and manifest references go through the same code. Hand-written here: which manifests a signature signs, and
the coverage rule for the signature's own ``ds:Object`` elements: every Object that carries content (text,
or elements other than the XAdES qualifying properties) must be covered by a verified reference, directly
or through a verified manifest; otherwise the content offered inside the signature is not what it signs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree  # type: ignore[import-untyped, unused-ignore]  # no stubs in the venv

from bidproc.signature.xades.timestamps import NS
from bidproc.signature.xades.xml_safety import ID_ATTRIBUTE_NAMES

DS_MANIFEST = f"{{{NS['ds']}}}Manifest"
DS_SIGNATURE = f"{{{NS['ds']}}}Signature"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_NOT_CONTENT = {f"{{{NS['xades']}}}QualifyingProperties", f"{{{NS['xades']}}}QualifyingPropertiesReference"}
# per signature: signxml copies the whole document for each reference it checks, so a hostile manifest
# listing thousands of entries would cost thousands of copies of a large file
MAX_MANIFEST_REFERENCES = 200


class TooManyManifestReferences(Exception):
    """Not computed, not judged: INDETERMINATE (never a verdict against the file)."""


@dataclass(frozen=True)
class Covered:
    """An element a verified reference covers, minus the signature an enveloped-signature transform removed."""

    element: etree._Element
    excluded: etree._Element | None = None

    def covers(self, node: etree._Element) -> bool:
        inside = node is self.element or any(a is self.element for a in node.iterancestors())
        if not inside or self.excluded is None:
            return inside
        return not (node is self.excluded or any(a is self.excluded for a in node.iterancestors()))


def covered_by(reference: etree._Element, target: etree._Element, signature: etree._Element) -> Covered:
    algorithms = {t.get("Algorithm") for t in reference.findall("ds:Transforms/ds:Transform", NS)}
    return Covered(target, signature if ENVELOPED in algorithms else None)


def signed_manifests(covered: Sequence[Covered], signature: etree._Element) -> list[etree._Element]:
    """The ds:Manifest elements inside what ``signature``'s references cover (its own, not other signatures')."""
    found: list[etree._Element] = []
    for item in covered:
        candidates = [item.element] if item.element.tag == DS_MANIFEST else item.element.iterdescendants(DS_MANIFEST)
        for manifest in candidates:
            owner = next(manifest.iterancestors(DS_SIGNATURE), None)
            if item.covers(manifest) and (owner is None or owner is signature) and manifest not in found:
                found.append(manifest)
    return found


def manifest_references(manifests: Sequence[etree._Element]) -> list[etree._Element]:
    references = [r for m in manifests for r in m.findall("ds:Reference", NS)]
    if len(references) > MAX_MANIFEST_REFERENCES:
        raise TooManyManifestReferences(
            f"{len(references)} manifest references, more than the limit of {MAX_MANIFEST_REFERENCES}: not verified"
        )
    return references


def own_content(node: etree._Element) -> list[str]:
    """What ``node`` carries itself, beside its child elements: its text (around the children; comments'
    and processing instructions' tails included) and its attributes, Id-like ones excepted (they only name
    it). A covered child does not cover them: an attribute or a sentence added to the element holding the
    signed one is shown to a reader and signed by nothing."""
    names = [etree.QName(k).localname for k in node.attrib]
    out = [f"@{name}" for name in names if name not in ID_ATTRIBUTE_NAMES]
    texts = [node.text, *(c.tail for c in node)]
    return [*out, "text"] if any(t and t.strip() for t in texts) else out


def _covered(node: etree._Element, covered: Sequence[Covered]) -> bool:
    if any(c.covers(node) for c in covered):
        return True
    children = [c for c in node if isinstance(c.tag, str)]
    if own_content(node) or not children:
        return False
    return all(_covered(c, covered) for c in children)


def uncovered_objects(signature: etree._Element, covered: Sequence[Covered]) -> list[str]:
    """The signature's ds:Object elements that carry content no verified reference covers."""
    out = []
    for index, obj in enumerate(signature.findall("ds:Object", NS)):
        children = [c for c in obj if isinstance(c.tag, str)]
        texts = [obj.text, *(c.tail for c in obj)]
        has_content = any(t and t.strip() for t in texts) or any(c.tag not in _NOT_CONTENT for c in children)
        if not has_content:
            continue
        # the XAdES properties live beside the content in some signers' Objects: judge the content only
        content = [c for c in children if c.tag not in _NOT_CONTENT]
        if any(c.covers(obj) for c in covered) or (
            content and not any(t and t.strip() for t in texts) and all(_covered(c, covered) for c in content)
        ):
            continue
        out.append(f"ds:Object {'#' + obj.get('Id') if obj.get('Id') else index + 1}")
    return out
