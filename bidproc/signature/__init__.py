"""Signature discovery and validation (PAdES, CAdES, XAdES) under ETSI EN 319 102-1.

Flow: api -> desk -> pipeline -> intake -> [signature] -> encryption -> archive.

Entry points (the pipeline and ``bidproc verify`` use nothing else):

- :func:`bidproc.signature.validate.validate_files` ``(files, policy, now) -> {name: ValidationReport}``:
  every file of a bid that is or carries a signature; detached signatures paired by signed digest.
  ``now`` is the validation time, read once by the caller (the pipeline's ``Runtime.clock``, the CLI);
  validation never reads the clock itself (``policy.at`` asks for a point-in-time validation instead).
- :func:`bidproc.signature.validate.validate_file` ``(name, data, policy, detached={}, now=None)``.
- :func:`bidproc.signature.validate.enveloped_content_of` ``(data) -> bytes | None``: a .p7m's document.

Layout: ``discover`` (what is a signature), ``pades`` / ``cades`` / ``xades`` (per format, pyhanko and
signxml do the cryptography; each ``validator`` gathers evidence, decides, assembles the report),
``decision`` (the EN 319 102-1 step after pyhanko's validation, shared by PAdES and CAdES: refine,
expiry recheck, B-LT on the signature's own data), ``pades.modifications`` (what changed after a PDF
signature, attack names),
``context`` (ValidationPolicy -> pyhanko settings: trust anchors only, hard-fail revocation, offline
means no fetcher), ``outcome`` (results and exceptions -> indications, in one place), ``french``
(arrêté of 22 March 2019), ``report`` (the verdict model), ``cli`` (``bidproc verify``).
"""
