"""A remote TSA's revocation data is fetched once per certificate until its nextUpdate, not per package."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bidproc.archive.ltv import RevocationCache, fetch_revocation, next_update
from bidproc.errors import BidprocError, Code
from bidproc.runtime import Runtime
from tests.archive.bids import archived_bid, local_settings
from tests.pki import TestPKI
from tests.pki.fixtures import pki  # noqa: F401  (the test PKI: remote TSA and its CRL over loopback)


def _fetches(pki: TestPKI) -> int:  # noqa: F811
    """Requests the loopback PKI served to its CRL repositories and OCSP responders so far."""
    return sum(1 for path in pki.requests if "/crls/" in path or "/ocsp/" in path)


def test_two_fetches_within_next_update_hit_the_responder_once_and_again_after_it(pki: TestPKI) -> None:  # noqa: F811
    cache, certs, roots = RevocationCache(), [pki.cert("tsa"), *pki.chain("tsa")], (pki.root_der,)
    now = datetime.now(UTC)
    before = _fetches(pki)
    first = fetch_revocation(certs, roots, now, cache)
    fetched = _fetches(pki) - before
    assert fetched >= 1 and first.crls
    until = next_update(first)
    assert until is not None and until > now
    second = fetch_revocation(certs, roots, now + timedelta(hours=1), cache)
    assert second == first and _fetches(pki) - before == fetched  # the second package: no request
    # Another set of roots is another cache entry (the roots decide what validated).
    with pytest.raises(BidprocError) as foreign:
        fetch_revocation(certs, (pki.der("interm"),), now, cache)
    assert foreign.value.code is Code.TIMESTAMP_UNAVAILABLE
    # At nextUpdate the entry is stale: the responder is asked again (the freshly served CRL may or may not
    # validate at that simulated moment; either way nothing stale is returned from the cache).
    counted = _fetches(pki)
    try:
        fetch_revocation(certs, roots, until, cache)
    except BidprocError as exc:
        assert exc.code is Code.TIMESTAMP_UNAVAILABLE
    assert _fetches(pki) > counted


def test_the_cache_is_bounded(pki: TestPKI) -> None:  # noqa: F811
    cache, certs, roots = RevocationCache(size=1), [pki.cert("tsa"), *pki.chain("tsa")], (pki.root_der,)
    now = datetime.now(UTC)
    fetch_revocation(certs, roots, now, cache)
    other_roots = (pki.root_der, pki.der("interm"))  # another key, the same valid data
    fetch_revocation(certs, other_roots, now, cache)
    counted = _fetches(pki)
    fetch_revocation(certs, roots, now, cache)  # evicted by the second: fetched again
    assert _fetches(pki) > counted
    counted = _fetches(pki)
    fetch_revocation(certs, roots, now, cache)  # now held
    assert _fetches(pki) == counted


def test_two_packages_sealed_with_a_remote_tsa_fetch_its_crl_once(tmp_path: Path, pki: TestPKI) -> None:  # noqa: F811
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    tsa_root = tmp_path / "tsa-root.pem"
    tsa_root.write_bytes(x509.load_der_x509_certificate(pki.root_der).public_bytes(serialization.Encoding.PEM))
    rt = Runtime(
        local_settings(tmp_path, BIDPROC_TIMESTAMPING_TSA_URL=pki.tsa_url, BIDPROC_TIMESTAMPING_TSA_ROOTS=str(tsa_root))
    )
    archived_bid(rt, reference="T-1")  # fetches, unless an earlier test of this process already did
    counted = _fetches(pki)
    assert any("/crls/" in path for path in pki.requests)  # the remote TSA's CRL was fetched at all
    archived_bid(rt, reference="T-2")
    assert _fetches(pki) == counted
