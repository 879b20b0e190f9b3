"""CMS RecipientInfo for an envelope's content-encryption key: who can open it, and opening it.

- RSA keys: KeyTransRecipientInfo with RSAES-OAEP (SHA-256, MGF1-SHA-256, empty label), the
  parameters encoded per RFC 4055 (hash identifiers with NULL parameters, section 2.1).
- EC keys: KeyAgreeRecipientInfo, ephemeral-static ECDH with ``dhSinglePass-stdDH-sha256kdf-scheme``
  (ANSI X9.63 KDF over ECC-CMS-SharedInfo) and AES-256 key wrap, per RFC 5753 section 3.1.

asn1crypto builds and parses the structures, ``cryptography`` does the arithmetic; the only thing
written by hand is the ECC-CMS-SharedInfo DER (three fields), which asn1crypto does not model.
"""

from __future__ import annotations

import hmac

from asn1crypto import algos, cms, core
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from bidproc.encryption.ber import OCTET_STRING, malformed, tlv
from bidproc.errors import BidprocError, Code

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
MIN_RSA_BITS = 2048

# RFC 5753 / SEC 1 key-agreement schemes: OID -> KDF hash. Opening accepts all; sealing writes SHA-256.
_ECDH_SCHEMES: dict[str, type[hashes.HashAlgorithm]] = {
    "1.3.133.16.840.63.0.2": hashes.SHA1,  # dhSinglePass-stdDH-sha1kdf-scheme (openssl's default)
    "1.3.132.1.11.0": hashes.SHA224,
    "1.3.132.1.11.1": hashes.SHA256,
    "1.3.132.1.11.2": hashes.SHA384,
    "1.3.132.1.11.3": hashes.SHA512,
}
_ECDH_SHA256 = "1.3.132.1.11.1"
_WRAP_KEY_BYTES = {"aes128_wrap": 16, "aes192_wrap": 24, "aes256_wrap": 32}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def _mismatch(message: str) -> BidprocError:
    return BidprocError(Code.OPENING_KEY_MISMATCH, message)


def _asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _issuer_and_serial(cert: asn1_x509.Certificate) -> cms.IssuerAndSerialNumber:
    # Built, dumped and loaded back: a parsed value keeps its bytes, so the RecipientInfo around it
    # does not re-serialise the issuer name field by field (that cost ~3 ms per envelope).
    built = cms.IssuerAndSerialNumber({"issuer": cert.issuer, "serial_number": cert.serial_number})
    return cms.IssuerAndSerialNumber.load(built.dump())


def _usage_allows(cert: x509.Certificate, usage: str) -> bool:
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return bool(getattr(ku, usage))


def recipient_info(cert: x509.Certificate, cek: bytes) -> cms.RecipientInfo:
    """The RecipientInfo that gives ``cek`` to the holder of ``cert``'s private key.

    A certificate nothing can be sealed to is ``seal.recipient_unsupported``, whatever the reason: a
    buyer's certificate comes from outside, and cryptography parses its key only when asked (a curve it
    does not know, RSA numbers that do not encrypt are ValueError or UnsupportedAlgorithm from there).
    """
    try:
        return _recipient_info(cert, cek)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise BidprocError(Code.SEAL_RECIPIENT_UNSUPPORTED, f"no envelope can be sealed to this key: {exc}") from None


def _recipient_info(cert: x509.Certificate, cek: bytes) -> cms.RecipientInfo:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise BidprocError(Code.SEAL_RECIPIENT_UNSUPPORTED, f"RSA key of {key.key_size} bits (< {MIN_RSA_BITS})")
        if not _usage_allows(cert, "key_encipherment"):
            raise BidprocError(Code.SEAL_RECIPIENT_UNSUPPORTED, "certificate key usage forbids key encipherment")
        return _rsa_oaep_recipient(_asn1_cert(cert), key, cek)
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not _usage_allows(cert, "key_agreement"):
            raise BidprocError(Code.SEAL_RECIPIENT_UNSUPPORTED, "certificate key usage forbids key agreement")
        return _ecdh_recipient(_asn1_cert(cert), key, cek)
    raise BidprocError(Code.SEAL_RECIPIENT_UNSUPPORTED, f"no CMS key management for {type(key).__name__}")


# --- RSA-OAEP key transport ------------------------------------------------------------------------


def _oaep_params(hash_name: str) -> algos.RSAESOAEPParams:
    # DigestAlgorithm dumps sha256 with NULL parameters, as RFC 4055 section 2.1 asks for OAEP.
    return algos.RSAESOAEPParams({
        "hash_algorithm": {"algorithm": hash_name},
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": hash_name}},
    })


_OAEP_SHA256 = cms.KeyEncryptionAlgorithm({"algorithm": "rsaes_oaep", "parameters": _oaep_params("sha256")}).dump()
_AES256_WRAP = cms.KeyEncryptionAlgorithm({"algorithm": "aes256_wrap"}).dump()


def _rsa_oaep_recipient(cert: asn1_x509.Certificate, key: rsa.RSAPublicKey, cek: bytes) -> cms.RecipientInfo:
    encrypted = key.encrypt(cek, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
    return cms.RecipientInfo({"ktri": {
        "version": "v0",
        "rid": {"issuer_and_serial_number": _issuer_and_serial(cert)},
        "key_encryption_algorithm": cms.KeyEncryptionAlgorithm.load(_OAEP_SHA256),
        "encrypted_key": encrypted,
    }})


def _open_ktri(ktri: cms.KeyTransRecipientInfo, key: PrivateKey) -> bytes:
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _mismatch("the envelope's recipient is an RSA key; the key given is not")
    alg = ktri["key_encryption_algorithm"]
    if alg["algorithm"].native != "rsaes_oaep":
        # PKCS#1 v1.5 key transport is refused: it is what Bleichenbacher-style oracles feed on.
        raise malformed(f"key transport {alg['algorithm'].native} is not accepted (RSAES-OAEP only)")
    params = alg["parameters"]
    hash_name = params["hash_algorithm"]["algorithm"].native
    mgf = params["mask_gen_algorithm"]
    if mgf["algorithm"].native != "mgf1":
        raise malformed("RSAES-OAEP mask generation other than MGF1")
    mgf_hash = mgf["parameters"]["algorithm"].native
    label = params["p_source_algorithm"]["parameters"].native
    if hash_name not in _HASHES or mgf_hash not in _HASHES or label:
        raise malformed("unsupported RSAES-OAEP parameters")
    try:
        return key.decrypt(ktri["encrypted_key"].native,
                           padding.OAEP(padding.MGF1(_HASHES[mgf_hash]()), _HASHES[hash_name](), None))
    except ValueError as exc:
        raise _mismatch("the key does not decrypt its recipient info (another key, or an altered envelope)") from exc


# --- ECDH key agreement (RFC 5753) -------------------------------------------------------------------


def _shared_info(key_info_der: bytes, ukm: bytes | None, kek_bytes: int) -> bytes:
    """ECC-CMS-SharedInfo (RFC 5753 section 7.2), written by hand: asn1crypto has no class for it."""
    body = key_info_der
    if ukm is not None:
        body += tlv(0xA0, tlv(OCTET_STRING, ukm))
    body += tlv(0xA2, tlv(OCTET_STRING, (kek_bytes * 8).to_bytes(4, "big")))
    return tlv(0x30, body)


def _kek(private: ec.EllipticCurvePrivateKey, public: ec.EllipticCurvePublicKey, scheme: str,
         key_info_der: bytes, ukm: bytes | None, kek_bytes: int) -> bytes:
    shared = private.exchange(ec.ECDH(), public)
    kdf = X963KDF(algorithm=_ECDH_SCHEMES[scheme](), length=kek_bytes,
                  sharedinfo=_shared_info(key_info_der, ukm, kek_bytes))
    return kdf.derive(shared)


def _ecdh_recipient(cert: asn1_x509.Certificate, key: ec.EllipticCurvePublicKey, cek: bytes) -> cms.RecipientInfo:
    ephemeral = ec.generate_private_key(key.curve)
    point = ephemeral.public_key().public_bytes(serialization.Encoding.X962,
                                                serialization.PublicFormat.UncompressedPoint)
    wrap = cms.KeyEncryptionAlgorithm.load(_AES256_WRAP)
    kek = _kek(ephemeral, key, _ECDH_SHA256, _AES256_WRAP, None, 32)
    return cms.RecipientInfo({"kari": {
        "version": "v3",
        # RFC 5753: id-ecPublicKey with absent parameters (the curve is the recipient's).
        "originator": {"originator_key": {"algorithm": {"algorithm": "ec"}, "public_key": point}},
        "key_encryption_algorithm": {"algorithm": _ECDH_SHA256, "parameters": wrap},
        "recipient_encrypted_keys": [{
            "rid": {"issuer_and_serial_number": _issuer_and_serial(cert)},
            "encrypted_key": aes_key_wrap(kek, cek),
        }],
    }})


def _curve_name(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return str(asn1_keys.PublicKeyInfo.load(der)["algorithm"]["parameters"].chosen.native)


def _open_kari(kari: cms.KeyAgreeRecipientInfo, rek: cms.RecipientEncryptedKey, key: PrivateKey) -> bytes:
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise _mismatch("the envelope's recipient is an EC key; the key given is not")
    originator = kari["originator"]
    if originator.name != "originator_key":
        raise malformed("key agreement without an ephemeral originator key (RFC 5753 requires one)")
    alg = kari["key_encryption_algorithm"]
    scheme = alg["algorithm"].dotted
    if scheme not in _ECDH_SCHEMES:
        raise malformed(f"key agreement scheme {scheme} is not supported (dhSinglePass-stdDH only)")
    key_info_der = alg["parameters"].dump()
    wrap = cms.KeyEncryptionAlgorithm.load(key_info_der)["algorithm"].native
    if wrap not in _WRAP_KEY_BYTES:
        raise malformed(f"key wrap {wrap} is not supported (AES key wrap only)")
    algorithm = originator.chosen["algorithm"]
    curve = algorithm["parameters"].native
    if algorithm["algorithm"].dotted != "1.2.840.10045.2.1" or curve not in (None, _curve_name(key)):
        # RFC 5753: id-ecPublicKey, parameters absent (or the recipient's own named curve)
        raise malformed("the originator's key is not an EC key on the recipient's curve")
    bits = originator.chosen["public_key"]
    if not bits.contents or bits.contents[0] != 0:  # an EC point is whole octets: no unused bits
        raise malformed("the originator's key is not a whole-octet BIT STRING")
    point = bits.contents[1:]
    try:
        ephemeral = ec.EllipticCurvePublicKey.from_encoded_point(key.curve, point)
    except ValueError as exc:
        raise malformed("the originator's key is not a point of the recipient's curve") from exc
    ukm = kari["ukm"].native  # None when absent
    kek = _kek(key, ephemeral, scheme, key_info_der, ukm, _WRAP_KEY_BYTES[wrap])
    try:
        return aes_key_unwrap(kek, rek["encrypted_key"].native)
    except InvalidUnwrap as exc:
        raise _mismatch("the key does not unwrap its recipient info (another key, or an altered envelope)") from exc


# --- choosing the recipient info that the given certificate opens -----------------------------------


def _matches(rid: core.Choice, cert: asn1_x509.Certificate) -> bool:
    if rid.name == "issuer_and_serial_number":
        ias = rid.chosen
        return bool(ias["issuer"].dump() == cert.issuer.dump() and ias["serial_number"].native == cert.serial_number)
    if rid.name in ("subject_key_identifier", "r_key_id"):
        chosen = rid.chosen
        wanted = chosen.native if rid.name == "subject_key_identifier" else chosen["subject_key_identifier"].native
        return cert.key_identifier is not None and hmac.compare_digest(wanted, cert.key_identifier)
    return False


def _check_version(info: cms.RecipientInfo) -> None:
    """RFC 5652 6.2: the version follows the recipient identifier's form; anything else is not CMS."""
    version = info.chosen["version"].native
    wanted: str | None
    if info.name == "ktri":
        wanted = "v0" if info.chosen["rid"].name == "issuer_and_serial_number" else "v2"
    else:
        wanted = {"kari": "v3", "kekri": "v4", "pwri": "v0"}.get(info.name)
    if wanted is not None and version != wanted:
        raise malformed(f"{info.name} recipient info has version {version}, not {wanted}")


def open_recipient_infos(infos: cms.RecipientInfos, key: PrivateKey, cert: x509.Certificate) -> bytes:
    """The content-encryption key, from the recipient info addressed to ``cert`` (opened with ``key``)."""
    ours = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    theirs = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if not hmac.compare_digest(ours, theirs):
        raise _mismatch("the private key is not the certificate's")
    target = _asn1_cert(cert)
    for info in infos:
        _check_version(info)
        if info.name == "ktri" and _matches(info.chosen["rid"], target):
            return _open_ktri(info.chosen, key)
        if info.name == "kari":
            for rek in info.chosen["recipient_encrypted_keys"]:
                if _matches(rek["rid"], target):
                    return _open_kari(info.chosen, rek, key)
    raise _mismatch("the certificate is not among the envelope's recipients")


def recipient_infos_der(certs: list[x509.Certificate], cek: bytes) -> bytes:
    if not certs:
        raise BidprocError(Code.SEAL_RECIPIENT_UNSUPPORTED, "an envelope needs at least one recipient")
    return bytes(cms.RecipientInfos([recipient_info(c, cek) for c in certs]).dump())

