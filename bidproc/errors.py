"""Every stable error and warning code of bidproc, in one place.

Codes are dotted names that clients, reports and the journal rely on: never rename one, only add.
An exception raised anywhere in bidproc is a :class:`BidprocError` carrying one of these codes; the
HTTP layer, the CLI and the pipeline turn it into a status (HTTP code, exit code, file verdict) here
and nowhere else.
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """Error codes: the subject (a file, a bid, a request) is refused or kept aside."""

    # archives
    ARCHIVE_BOMB = "archive.bomb"
    ARCHIVE_PATH_TRAVERSAL = "archive.path_traversal"
    ARCHIVE_SYMLINK = "archive.symlink"
    ARCHIVE_ENCRYPTED = "archive.encrypted"
    ARCHIVE_TOO_DEEP = "archive.too_deep"
    ARCHIVE_TOO_MANY_ENTRIES = "archive.too_many_entries"
    ARCHIVE_CORRUPT = "archive.corrupt"
    ARCHIVE_BAD_NAME = "archive.bad_name"
    # types
    TYPE_NOT_ALLOWED = "type.not_allowed"
    TYPE_MISMATCH = "type.mismatch"
    # PDF
    PDF_MALFORMED = "pdf.malformed"
    PDF_ENCRYPTED = "pdf.encrypted"
    # scanning
    MALWARE_DETECTED = "malware.detected"
    SCAN_UNAVAILABLE = "scan.unavailable"
    SCAN_FAILED = "scan.failed"
    SCAN_INCOMPLETE = "scan.incomplete"
    # files
    SIZE_TOO_LARGE = "size.too_large"
    FILE_EMPTY = "file.empty"
    FILE_NAME_INVALID = "file.name_invalid"
    FILE_DUPLICATE = "file.duplicate"
    FILE_NOT_FOUND = "file.not_found"
    PARSE_TIMEOUT = "parse.timeout"
    PARSE_CRASHED = "parse.crashed"
    # bids and tenders
    DEADLINE_PASSED = "deadline.passed"
    DEADLINE_INVALID = "deadline.invalid"
    BID_NOT_FOUND = "bid.not_found"
    BID_ALREADY_SUBMITTED = "bid.already_submitted"
    BID_EMPTY = "bid.empty"
    BID_CHANGED = "bid.changed"
    BID_TOO_MANY_FILES = "bid.too_many_files"  # api.max_files_per_bid reached (a count, not a size)
    BID_QUARANTINED = "bid.quarantined"  # a file not read because another file of its bid has malware
    BID_NOT_SUBMITTED = "bid.not_submitted"
    SERVICE_BUSY = "service.busy"
    INTERNAL_ERROR = "internal.error"
    TENDER_NOT_FOUND = "tender.not_found"
    TENDER_DUPLICATE = "tender.duplicate"
    OPENING_TOO_EARLY = "opening.too_early"
    # access
    AUTH_DENIED = "auth.denied"
    AUTH_MISSING = "auth.missing"
    AUTH_FORBIDDEN_ROLE = "auth.forbidden_role"  # a valid key used outside its role (platform, buyer, archivist)
    AUTH_THROTTLED = "auth.throttled"  # too many failed authentications from one client: wait, then retry
    QUOTA_UPLOADS = "quota.uploads"  # this platform already has its share of concurrent uploads
    QUOTA_RATE = "quota.rate"  # this platform sends more uploads a minute than its quota
    QUOTA_STORAGE = "quota.storage"  # this platform's files would exceed its storage quota
    # requests and environment
    REQUEST_INVALID = "request.invalid"
    REQUEST_NOT_FOUND = "request.not_found"  # no such route
    REQUEST_METHOD_NOT_ALLOWED = "request.method_not_allowed"
    REQUEST_TOO_LARGE = "request.too_large"  # a JSON body beyond the API's bound
    REQUEST_TIMEOUT = "request.timeout"  # an upload that stopped sending for longer than the idle timeout
    REQUEST_INCOMPLETE = "request.incomplete"  # the client went away before its request was complete
    STORAGE_UNAVAILABLE = "storage.unavailable"
    DATABASE_UNAVAILABLE = "database.unavailable"  # the metadata database cannot be reached: retry later
    STORAGE_NOT_FOUND = "storage.not_found"
    STORAGE_INTEGRITY = "storage.integrity"
    STORAGE_IMMUTABLE = "storage.immutable"  # an archived object cannot be overwritten, deleted or unlocked early
    TIMESTAMP_UNAVAILABLE = "timestamp.unavailable"
    TIMESTAMP_INVALID = "timestamp.invalid"
    CONFIG_INVALID = "config.invalid"
    PIPELINE_ATTEMPTS_EXHAUSTED = "pipeline.attempts_exhausted"  # a bid that kept failing: kept for a human
    JOURNAL_BROKEN = "journal.broken"
    # signatures (file-level: the per-signature verdict is an ETSI indication, see signature.report)
    SIGNATURE_UNREADABLE = "signature.unreadable"
    XML_UNSAFE = "xml.unsafe"
    # intake (added with issue 4)
    ARCHIVE_DEVICE_ENTRY = "archive.device_entry"  # a device, FIFO or socket entry in an archive
    ARCHIVE_UNSUPPORTED = "archive.unsupported"  # a compression method we cannot inflate safely
    TYPE_POLYGLOT = "type.polyglot"  # one file that is two formats at once (e.g. PDF and ZIP)
    PARSE_UNAVAILABLE = "parse.unavailable"  # the parser sandbox cannot start: retry, like scan.unavailable
    # sealing until the opening (issue 10)
    SEAL_TAMPERED = "seal.tampered"  # a CMS envelope's content or tag fails authentication
    SEAL_MALFORMED = "seal.malformed"  # not a CMS AuthEnvelopedData bidproc can read (or truncated)
    SEAL_RECIPIENT_UNSUPPORTED = "seal.recipient_unsupported"  # a certificate that cannot be sealed to
    OPENING_KEY_MISMATCH = "opening.key_mismatch"  # the key/certificate given is not a recipient of the envelope
    OPENING_QUORUM = "opening.quorum"  # fewer than k valid distinct shares of this tender
    OPENING_OFFLINE = "opening.offline"  # recipients mode: only the buyer's own keys open, on the buyer's machine
    OPENING_INTERRUPTED = "opening.interrupted"  # an opening job lost its key (expired, crashed): give the shares again
    QUEUE_UNAVAILABLE = "queue.unavailable"  # the job queue cannot be reached: retry later
    # archive with proofs (issue 11)
    EVIDENCE_PENDING = "evidence.pending"  # the bid's first evidence package is not written yet: wait for it
    EVIDENCE_NOT_FOUND = "evidence.not_found"  # no such version of the bid's evidence package (asked by number)


class Warning_(StrEnum):
    """Warning codes: the subject is accepted, but a reader should know this."""

    # signatures: facts about the signer's certificate and claims (issue 9: no bare strings)
    CERTIFICATE_REVOKED_AFTER_SIGNING = "certificate.revoked_after_signing"  # revoked, after the proof of existence
    CERTIFICATE_EXPIRED_AFTER_SIGNING = "certificate.expired_after_signing"  # expired, after the proof of existence
    SIGNING_TIME_AFTER_TIMESTAMP = "signing_time.after_timestamp"  # claimed time later than its proof of existence
    ASIC_MANIFEST = "asic.manifest"  # an ASiC manifest entry that is unusable or does not match

    OFFICE_MACROS = "office.macros"
    PDF_REPAIRED = "pdf.repaired"
    PDF_ACTIVE_CONTENT = "pdf.active_content"
    PDF_ATTACHMENTS = "pdf.attachments"
    PDF_SIGNED = "pdf.signed"
    NAME_NORMALISED = "name.normalised"
    TIMESTAMP_LOCAL = "timestamp.local_tsa"
    # signatures: what changed after a PDF signature, and the known attack it amounts to
    PDF_MODIFIED_AFTER_SIGNING = "pdf.modified_after_signing"
    PDF_INCREMENTAL_SAVING_ATTACK = "pdf.incremental_saving_attack"
    PDF_SHADOW_ATTACK = "pdf.shadow_attack"
    PDF_SIGNATURE_WRAPPING = "pdf.signature_wrapping"
    PDF_UNIVERSAL_SIGNATURE_FORGERY = "pdf.universal_signature_forgery"
    PDF_CERTIFICATION_ATTACK = "pdf.certification_attack"
    PDF_NOT_PADES_BASELINE = "pdf.not_pades_baseline"  # /SubFilter is not ETSI.CAdES.detached (EN 319 142-1)
    SIGNATURE_OFFLINE_NO_REVOCATION = "signature.offline_no_revocation"
    SIGNATURE_DETACHED_PAIRED_BY_NAME = "signature.detached_paired_by_name"
    PDF_DIFF_ANALYSIS = "pdf.diff_analysis"  # pyhanko's reason for refusing the changes after a signature
    CMS_SIGNER_COUNT = "cms.signer_count"  # no longer emitted (every signer is validated); codes are never removed
    CADES_ARCHIVE_TIMESTAMP_NOT_VALIDATED = "cades.archive_timestamp_not_validated"
    # intake (added with issue 4)
    PDF_NOT_NORMALISED = "pdf.not_normalised"  # too large for a reading rendition; the original stands
    ARCHIVE_EMPTY_MEMBER = "archive.empty_member"
    CMS_CONTENT_NOT_INSPECTED = "cms.content_not_inspected"
    SIGNATURE_VALIDATION_DATA_INCOMPLETE = "signature.validation_data_incomplete"  # embedded data short of B-LT
    PDF_FORM_FILLED_AFTER_SIGNING = "pdf.form_filled_after_signing"  # allowed, but field values differ from signed
    ASIC_UNSIGNED_MEMBER = "asic.unsigned_member"  # a file in an ASiC container that no signature covers
    ASIC_AMBIGUOUS_MEMBER = "asic.ambiguous_member"  # an ASiC entry not read as one member (skipped, name reused)
    XML_PARTIALLY_SIGNED = "xml.partially_signed"  # content of the XML file outside every signed reference
    # XAdES levels beyond B-T
    XADES_VALIDATION_DATA_INCOMPLETE = "xades.validation_data_incomplete"  # embedded values do not cover: no B-LT
    XADES_ARCHIVE_TIMESTAMP_INVALID = "xades.archive_timestamp_invalid"  # an ArchiveTimeStamp not verified: no B-LTA
    PADES_ARCHIVE_TIMESTAMP_NOT_VALIDATED = "pades.archive_timestamp_not_validated"  # a document timestamp failed
    PDF_TIMESTAMP_ONLY = "pdf.timestamp_only"  # a document timestamp protecting no signature: not a signature
    # PDF structure attacks (issue 8)
    PDF_UNPARSED_TAIL = "pdf.unparsed_tail"  # bytes after the last parsed revision (incremental saving attack)
    PDF_SIGNATURE_DICTIONARY_CHANGED = "pdf.signature_dictionary_changed"  # /Reason, /M, /ByteRange... redefined
    PDF_BYTE_RANGE_INVALID = "pdf.byte_range_invalid"  # gap not exactly /Contents, ranges overlapping another's
    # EU trusted lists (issue 12): prefixes of ``qualification_details`` lines, never a signature's verdict
    TRUST_LIST_SKIPPED = "trust.list_skipped"  # a national list broken, unsigned, expired or not announced
    TRUST_LIST_STALE = "trust.list_stale"  # the LOTL is past its NextUpdate: still used, reported
    TRUST_NOT_ASSESSED = "trust.not_assessed"  # no usable trusted list: qualification NA


class BidprocError(Exception):
    """An expected failure with a stable code and a message for humans.

    Not a frozen dataclass: the interpreter sets ``__traceback__`` on exceptions as they propagate.
    """

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"BidprocError({self.code.value!r}, {self.message!r})"

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"


class UnsafeXML(BidprocError):
    """XML we refuse to process (DOCTYPE/entities, too big, too deep, not well-formed): one exception for
    intake's detection and the signature parser alike, always ``xml.unsafe``."""

    def __init__(self, message: str) -> None:
        super().__init__(Code.XML_UNSAFE, message)


# Where a code becomes an HTTP status: the one mapping, used by the API.
HTTP_STATUS: dict[Code, int] = {
    Code.AUTH_MISSING: 401,
    Code.AUTH_DENIED: 403,
    Code.AUTH_FORBIDDEN_ROLE: 403,
    Code.OPENING_OFFLINE: 409,
    Code.EVIDENCE_PENDING: 409,
    Code.EVIDENCE_NOT_FOUND: 404,
    Code.BID_NOT_FOUND: 404,
    Code.TENDER_NOT_FOUND: 404,
    Code.FILE_NOT_FOUND: 404,
    Code.DEADLINE_PASSED: 409,
    Code.BID_ALREADY_SUBMITTED: 409,
    Code.BID_CHANGED: 409,
    Code.BID_NOT_SUBMITTED: 409,
    Code.SERVICE_BUSY: 503,
    Code.INTERNAL_ERROR: 500,
    Code.STORAGE_INTEGRITY: 500,
    Code.STORAGE_IMMUTABLE: 409,
    Code.STORAGE_NOT_FOUND: 500,
    Code.CONFIG_INVALID: 500,
    Code.JOURNAL_BROKEN: 500,
    Code.TENDER_DUPLICATE: 409,
    Code.FILE_DUPLICATE: 409,
    Code.OPENING_TOO_EARLY: 409,
    Code.OPENING_QUORUM: 403,
    Code.OPENING_INTERRUPTED: 409,
    Code.QUEUE_UNAVAILABLE: 503,
    Code.SIZE_TOO_LARGE: 413,
    Code.BID_TOO_MANY_FILES: 413,
    Code.STORAGE_UNAVAILABLE: 503,
    Code.DATABASE_UNAVAILABLE: 503,
    Code.TIMESTAMP_UNAVAILABLE: 503,
    Code.SCAN_UNAVAILABLE: 503,
    Code.AUTH_THROTTLED: 429,
    Code.QUOTA_UPLOADS: 429,
    Code.QUOTA_RATE: 429,
    Code.QUOTA_STORAGE: 429,
    Code.REQUEST_NOT_FOUND: 404,
    Code.REQUEST_METHOD_NOT_ALLOWED: 405,
    Code.REQUEST_TOO_LARGE: 413,
    Code.REQUEST_TIMEOUT: 408,
}


def http_status(code: Code) -> int:
    return HTTP_STATUS.get(code, 400 if code.value.split(".")[0] in {"request", "deadline", "file", "bid"} else 422)


class Retry(StrEnum):
    """What the pipeline does with a stage that raised a code: the one retry table, beside HTTP_STATUS."""

    WAIT = "wait"  # the environment is down (clamd, the sandbox, storage, the TSA): wait as long as it takes,
    #               never counted against the bid (infrastructure failure is never a verdict against a bidder)
    RETRY = "retry"  # may be the bid's own data (an answer of clamd's, a stored object failing its hash):
    #                 retried, each try counted, so a poison bid ends `failed` for a human to look at


RETRY_POLICY: dict[Code, Retry] = {
    Code.SCAN_UNAVAILABLE: Retry.WAIT,
    Code.PARSE_UNAVAILABLE: Retry.WAIT,
    Code.STORAGE_UNAVAILABLE: Retry.WAIT,
    Code.DATABASE_UNAVAILABLE: Retry.WAIT,
    Code.TIMESTAMP_UNAVAILABLE: Retry.WAIT,
    Code.EVIDENCE_PENDING: Retry.WAIT,  # the pipeline is still archiving the bid: its next version waits
    Code.SCAN_FAILED: Retry.RETRY,  # clamd answered ERROR: try again later, never a verdict without a scan
    Code.STORAGE_NOT_FOUND: Retry.RETRY,
    Code.STORAGE_INTEGRITY: Retry.RETRY,
}
RETRY_CODES = frozenset(RETRY_POLICY)  # not verdicts: the stage is tried again later


def wait_delay_seconds(waits: int, first: float, ceiling: float) -> float:
    """Backoff while the environment is down: ``first``, doubling per wait, never above ``ceiling``."""
    return float(min(ceiling, first * 2 ** min(waits, 30)))
