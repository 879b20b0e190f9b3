"""Which PAdES level a PDF signature's material supports (EN 319 142-1), and its embedded validation data."""

from __future__ import annotations

from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.general import find_unique_cms_attribute
from pyhanko.sign.validation import ades, generic_cms
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.errors import NoDSSFoundError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.policy_decl import LocalKnowledge

from bidproc.signature.report import Level


def _has_dss(reader: PdfFileReader) -> bool:
    try:
        DocumentSecurityStore.read_dss(reader)
    except NoDSSFoundError:
        return False
    return True


def _has_adobe_revinfo(sig: EmbeddedPdfSignature) -> bool:
    try:
        find_unique_cms_attribute(sig.signer_info["signed_attrs"], "adobe_revocation_info_archival")
    except (KeyError, ValueError):
        return False
    return True


def pdf_level(sig: EmbeddedPdfSignature, reader: PdfFileReader, doc_ts_revisions: list[int]) -> Level:
    """The level the signature's material supports: validation then tells whether it holds.

    B-T: a signature timestamp; B-LT: plus validation data (DSS or Adobe's revocation attribute);
    B-LTA: plus a document timestamp in a later revision.
    """
    has_ts = any(True for _ in generic_cms.extract_tst_data_iter(sig.signer_info, signed=False))
    if not has_ts:
        return Level.B_B
    if not (_has_dss(reader) or _has_adobe_revinfo(sig)):
        return Level.B_T
    return Level.B_LTA if any(r > sig.signed_revision for r in doc_ts_revisions) else Level.B_LT


def embedded_validation_data(sig: EmbeddedPdfSignature) -> LocalKnowledge:
    """The DSS and Adobe revocation attribute as local knowledge, for B-LT without a document timestamp.

    pyhanko reads them only inside ``ades_lta_validation``; its two readers are private, which is
    acceptable because pyproject pins pyhanko to 0.38.*.
    """
    dss, adobe = ades._dss_to_local_knowledge(sig.reader), ades._adobe_revinfo_archival_to_local_knowledge(sig)
    return LocalKnowledge(
        known_ocsps=dss.known_ocsps + adobe.known_ocsps,
        known_crls=dss.known_crls + adobe.known_crls,
        known_certs=dss.known_certs,
    )
