"""Trusted lists: the real EU lists verify offline; a broken, unsigned, expired or unannounced national
list is reported and skipped without touching the others (issue 12, "Trusted lists")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import x509 as asn1_x509
from lxml import etree

from bidproc.signature.trust.documents import Document, SignatureState
from bidproc.signature.trust.lists import TrustedLists, load
from bidproc.signature.trust.qualify import cert_status
from tests.services import SHARED
from tests.trust.builder import NOW, Service, make_cert, national_list, qc_statements, sign_list, unsigned
from tests.trust.conftest import World

REAL = SHARED / "corpus" / "trusted-lists"


def _status(lists: TrustedLists, source: str):  # type: ignore[no-untyped-def]
    return next(s for s in lists.lists if s.source == source)


def _qualified_still(world: World, lists: TrustedLists) -> None:
    """The good French list keeps working whatever happened to another list."""
    leaf = make_cert("Jean Dupont", issuer=world.qca, qc=qc_statements(sscd=True))
    status = cert_status(asn1_x509.Certificate.load(leaf.der), lists, NOW)
    assert status.qualified and status.qscd


def test_real_lotl_and_belgian_list_verify_offline() -> None:
    lotl = Document("eu-lotl.xml", (REAL / "eu-lotl.xml").read_bytes())
    be = Document("tsl-be-v6.xml", (REAL / "tsl-be-v6.xml").read_bytes())
    # At a time when both lists are current: both verify (LOTL against the Official Journal certificates
    # bundled with pyhanko, BE against the signers the LOTL names for BE) and BE's services are loaded.
    fresh = load(lotl, [be], datetime(2026, 6, 20, tzinfo=UTC))
    lo, tl = _status(fresh, "eu-lotl.xml"), _status(fresh, "tsl-be-v6.xml")
    assert (lo.signature, lo.expired, lo.used) == (SignatureState.VALID, False, True)
    assert (tl.signature, tl.territory, tl.expired, tl.used) == (SignatureState.VALID, "BE", False, True)
    assert tl.services > 50 and fresh.usable
    assert len(list(fresh.registry.known_certificate_authorities)) > 20
    assert len(list(fresh.registry.known_timestamp_authorities)) > 5
    # After the LOTL's NextUpdate (2026-11-18): reported expired, its signature still shown valid.
    late = load(lotl, [be], datetime(2026, 11, 30, tzinfo=UTC))
    lo = _status(late, "eu-lotl.xml")
    assert lo.signature == SignatureState.VALID and lo.expired and lo.problem and "expired" in lo.problem
    # After BE's NextUpdate too: BE verifies but is skipped as expired.
    later = load(lotl, [be], datetime(2027, 1, 1, tzinfo=UTC))
    tl = _status(later, "tsl-be-v6.xml")
    assert tl.signature == SignatureState.VALID and tl.expired and not tl.used and not later.usable


def test_real_belgian_list_refused_under_other_signers(world: World) -> None:
    """BE as the LOTL announces it verifies; the same bytes under a LOTL naming other signers do not."""
    be = Document("tsl-be-v6.xml", (REAL / "tsl-be-v6.xml").read_bytes())
    from tests.trust.builder import lotl as make_lotl

    fake = sign_list(make_lotl([("BE", "https://tsl.belgium.be/tsl-be-v6.xml", [world.tlso])]), world.lotl_signer)
    lists = load(Document("lotl", fake), [be], datetime(2026, 6, 20, tzinfo=UTC), [_asn1(world.lotl_signer.der)])
    tl = _status(lists, "tsl-be-v6.xml")
    assert tl.signature == SignatureState.INVALID and not tl.used and not lists.usable


def _asn1(der: bytes) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(der)


def _tamper_service_name(xml: bytes) -> bytes:
    return xml.replace(b"Qualified CA service", b"Qualified CA servicE", 1)


def _inject_service(world: World, xml: bytes) -> bytes:
    """A CA added to a signed list after signing (the attacker wants their CA qualified)."""
    root = etree.fromstring(xml)
    rogue = national_list("FR", [Service(make_cert("Rogue CA", ca=True), "Rogue service")])
    tsp = rogue.find("{http://uri.etsi.org/02231/v2#}TrustServiceProviderList")[0]
    root.find("{http://uri.etsi.org/02231/v2#}TrustServiceProviderList").append(tsp)
    return bytes(etree.tostring(root))


def _wrapped_expired(world: World, rogue_ca: object, same_issue_date: bool = False) -> bytes:
    """An expired but genuinely signed list (signature referencing it by Id) moved inside an unsigned
    root that claims a fresh NextUpdate, its ds:Signature hoisted to the outer root (XML signature
    wrapping): the signature still verifies, over the inner list."""
    issued = NOW - timedelta(days=300)
    inner = etree.fromstring(
        sign_list(
            national_list("FR", [Service(rogue_ca, "Rogue")], issued=issued, next_update=NOW - timedelta(days=10)),  # type: ignore[arg-type]
            world.tlso,
        )
    )
    signature = inner.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    inner.remove(signature)
    outer = national_list("FR", [], issued=issued if same_issue_date else None)
    outer.set("Id", "OUTER")
    outer.append(signature)
    outer.append(inner)
    return bytes(etree.tostring(outer))


def test_wrapped_expired_list_is_judged_on_what_is_signed(world: World) -> None:
    rogue_ca = make_cert("Rogue CA", ca=True)
    lists = world.load(Document("wrapped.xml", _wrapped_expired(world, rogue_ca, same_issue_date=True)))
    status = _status(lists, "wrapped.xml")
    # signxml refuses the hoisted signature today (INVALID); were it accepted, the dates would be read
    # from the signed inner list (expired). Either way the list is not used and says why.
    assert not status.used and status.problem
    assert status.signature == SignatureState.INVALID or (status.expired and status.next_update < NOW)  # type: ignore[operator]
    leaf = make_cert("Mallory", issuer=rogue_ca, qc=qc_statements(sscd=True))
    assert not cert_status(_asn1(leaf.der), lists, NOW).qualified


@pytest.mark.parametrize(
    ("variant", "state"),
    [
        ("wrapped_expired", SignatureState.INVALID),  # the outer root claims another issue date
        ("altered", SignatureState.INVALID),
        ("injected", SignatureState.INVALID),
        ("wrong_signer", SignatureState.INVALID),
        ("unsigned", SignatureState.UNSIGNED),
        ("not_announced", SignatureState.NOT_ANNOUNCED),
        ("garbage", SignatureState.UNREADABLE),
    ],
)
def test_broken_list_is_skipped_and_reported(world: World, variant: str, state: str) -> None:
    rogue_ca = make_cert("Rogue CA", ca=True)
    lists_by_variant = {
        "altered": lambda: _tamper_service_name(world.fr_xml),
        "injected": lambda: _inject_service(world, world.fr_xml),
        "wrong_signer": lambda: sign_list(national_list("FR", [Service(rogue_ca, "Rogue")]), make_cert("impostor")),
        "unsigned": lambda: unsigned(national_list("FR", [Service(rogue_ca, "Rogue")])),
        "not_announced": lambda: sign_list(national_list("IT", [Service(rogue_ca, "Rogue")]), world.tlso),
        "garbage": lambda: b"<html>not a list</html>",
        "wrapped_expired": lambda: _wrapped_expired(world, rogue_ca),
    }
    bad = Document(f"bad-{variant}.xml", lists_by_variant[variant]())
    lists = world.load(bad)
    status = _status(lists, f"bad-{variant}.xml")
    assert status.signature == state and not status.used and status.problem
    assert any(f"bad-{variant}.xml" in p for p in lists.problems)
    _qualified_still(world, lists)
    # nothing of the bad list was registered: a leaf of the rogue CA is not qualified
    leaf = make_cert("Mallory", issuer=rogue_ca, qc=qc_statements(sscd=True))
    assert not cert_status(_asn1(leaf.der), lists, NOW).qualified


def test_expired_national_list_is_skipped(world: World) -> None:
    expired = sign_list(
        national_list(
            "DE",
            [Service(make_cert("Old CA", ca=True), "Old")],
            issued=NOW - timedelta(days=300),
            next_update=NOW - timedelta(days=10),
        ),
        world.tlso,
    )
    lists = world.load(Document("de.xml", expired))
    de = _status(lists, "de.xml")
    assert de.signature == SignatureState.VALID and de.expired and not de.used
    _qualified_still(world, lists)


def test_lotl_with_broken_signature_announces_nothing(world: World) -> None:
    broken = world.lotl_xml.replace(b"https://tl.example/fr.xml", b"https://tl.example/fR.xml", 1)
    lists = load(Document("lotl.xml", broken), [Document("fr.xml", world.fr_xml)], NOW, [_asn1(world.lotl_signer.der)])
    assert _status(lists, "lotl.xml").signature == SignatureState.INVALID
    assert _status(lists, "fr.xml").signature == SignatureState.NOT_ANNOUNCED and not lists.usable


def test_lotl_signers_found_through_pivots(world: World) -> None:
    """The anchor (Official Journal) key A signed pivot 1, which names key B; pivot 2 (signed by B) names
    key C; the current LOTL is signed by C. Without the pivots it does not verify; with them it does."""
    from tests.trust.builder import lotl as make_lotl

    a, b, c = make_cert("OJ anchor key"), make_cert("LOTL key 2"), make_cert("LOTL key 3")
    fr_ptr = [("FR", "https://tl.example/fr.xml", [world.tlso])]
    urls = ("https://lotl.example/pivot-001.xml", "https://lotl.example/pivot-002.xml")
    pivot1 = sign_list(make_lotl(fr_ptr, issued=NOW - timedelta(days=200), self_signers=[b]), a)
    pivot2 = sign_list(make_lotl(fr_ptr, issued=NOW - timedelta(days=100), self_signers=[c], pivots=urls[:1]), b)
    current = Document("lotl.xml", sign_list(make_lotl(fr_ptr, pivots=urls), c))
    fr = [Document("fr.xml", world.fr_xml)]
    pivots = {urls[0]: Document(urls[0], pivot1), urls[1]: Document(urls[1], pivot2)}

    without = load(current, fr, NOW, [_asn1(a.der)])
    assert _status(without, "lotl.xml").signature == SignatureState.INVALID and not without.usable
    walked = load(current, fr, NOW, [_asn1(a.der)], pivots)
    assert _status(walked, "lotl.xml").signature == SignatureState.VALID and walked.usable
    assert [s.used for s in walked.lists if s.kind == "PIVOT"] == [True, True]
    # a pivot missing, or one signed by a key the previous pivot does not name: the chain breaks
    missing = load(current, fr, NOW, [_asn1(a.der)], {urls[0]: pivots[urls[0]]})
    assert not missing.usable and any(s.kind == "PIVOT" and s.problem for s in missing.lists)
    forged2 = sign_list(make_lotl(fr_ptr, issued=NOW - timedelta(days=100), self_signers=[c]), make_cert("mallory"))
    forged = load(current, fr, NOW, [_asn1(a.der)], {**pivots, urls[1]: Document(urls[1], forged2)})
    assert not forged.usable


def test_real_belgian_history_and_qtst() -> None:
    """On the real BE list: a service withdrawn today counts as granted during its past granted period
    (history entries name the CA by subject/SKI only: completed from the current entry), and a listed
    QTST's certificate is recognised as qualified at a time it is granted."""
    from bidproc.signature.trust.qualify import timestamp_qualified

    lotl = Document("eu-lotl.xml", (REAL / "eu-lotl.xml").read_bytes())
    be = Document("tsl-be-v6.xml", (REAL / "tsl-be-v6.xml").read_bytes())
    lists = load(lotl, [be], datetime(2026, 6, 20, tzinfo=UTC))
    reg = lists.registry
    root = next(
        a
        for a in reg.known_certificate_authorities
        if a.name.native.get("common_name") == "Belgium Root CA"  # type: ignore[attr-defined]
    )
    assert list(reg.applicable_service_definitions(root, datetime(2016, 8, 1, tzinfo=UTC)))  # granted then
    assert not list(reg.applicable_service_definitions(root, datetime(2017, 1, 1, tzinfo=UTC)))  # withdrawn
    # sets iterate in hash order, which changes between runs: pick by name
    tsa = sorted(reg.known_timestamp_authorities, key=lambda a: a.name.human_friendly)[0]
    first = min(sd.base_info.valid_from for sd in reg.applicable_service_definitions(tsa, None))
    der = tsa.certificate.dump()  # type: ignore[attr-defined]
    assert timestamp_qualified(der, lists, first + timedelta(days=1))
    assert not timestamp_qualified(der, lists, first - timedelta(days=1))
