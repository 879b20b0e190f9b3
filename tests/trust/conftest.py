from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from asn1crypto import x509 as asn1_x509

from bidproc.signature.trust.lists import Document, TrustedLists, load
from tests.pki.fixtures import pki  # noqa: F401
from tests.trust.builder import (
    GRANTED,
    NOW,
    WITHDRAWN,
    Key,
    Service,
    lotl,
    make_cert,
    national_list,
    sign_list,
)


@dataclass
class World:
    """A LOTL and a French list, signed by test keys, with the CAs they list."""

    lotl_signer: Key
    tlso: Key
    qca: Key  # granted qualified CA, no qualifiers: the certificate's QC statements decide
    noqscd_ca: Key  # granted, with the list qualifier QCNoQSCD
    withdrawn_ca: Key  # granted from NOW-2000d, withdrawn since NOW-100d
    late_ca: Key  # granted only since NOW-5d
    seal_ca: Key
    lotl_xml: bytes
    fr_xml: bytes

    def load(self, *extra: Document) -> TrustedLists:
        docs = [Document("fr.xml", self.fr_xml), *extra]
        return load(Document("lotl.xml", self.lotl_xml), docs, NOW, [asn1_x509.Certificate.load(self.lotl_signer.der)])


@pytest.fixture(scope="session")
def world() -> World:
    lotl_signer, tlso = make_cert("EU LOTL signer (test)"), make_cert("FR trusted list operator (test)")
    qca, noqscd = make_cert("Qualified CA", ca=True), make_cert("Qualified CA no QSCD", ca=True)
    withdrawn, late = make_cert("Withdrawn CA", ca=True), make_cert("Late CA", ca=True)
    seal = make_cert("Seal CA", ca=True)
    services = [
        Service(qca, "Qualified CA service"),
        Service(noqscd, "No-QSCD CA service", qualifiers=["QCNoQSCD"]),
        Service(
            withdrawn,
            "Withdrawn CA service",
            status=WITHDRAWN,
            since=NOW - timedelta(days=100),
            history=[(GRANTED, NOW - timedelta(days=2000))],
        ),
        Service(late, "Late CA service", since=NOW - timedelta(days=5)),
        Service(seal, "Seal CA service", for_type="ForeSeals"),
    ]
    fr = sign_list(national_list("FR", services), tlso)
    pointers = [("FR", "https://tl.example/fr.xml", [tlso]), ("DE", "https://tl.example/de.xml", [tlso])]
    lotl_xml = sign_list(lotl(pointers), lotl_signer)
    return World(lotl_signer, tlso, qca, noqscd, withdrawn, late, seal, lotl_xml, fr)
