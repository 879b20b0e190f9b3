"""Online lists cached on disk: refreshed on a schedule, and a bad download never replaces the last good
copy (issue 12, "Trusted lists": online, cached, last good copy kept). The network is a fake fetch."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from asn1crypto import x509 as asn1_x509

from bidproc.signature.trust.cache import ListCache, cached, refresh, stale
from bidproc.signature.trust.source import TrustOptions, load_lists
from tests.trust.builder import NOW
from tests.trust.conftest import World

LOTL_URL = "https://lotl.example/eu-lotl.xml"
FR_URL = "https://tl.example/fr.xml"


def _fetcher(pages: dict[str, bytes | Exception]):  # type: ignore[no-untyped-def]
    async def fetch(url: str) -> bytes:
        page = pages.get(url, OSError(f"404 {url}"))
        if isinstance(page, Exception):
            raise page
        return page

    return fetch


def _refresh(world: World, cache: ListCache, pages: dict[str, bytes | Exception]):  # type: ignore[no-untyped-def]
    signers = [asn1_x509.Certificate.load(world.lotl_signer.der)]
    return asyncio.run(refresh(LOTL_URL, cache, _fetcher(pages), signers, now=NOW))


def test_refresh_keeps_last_good_copy(world: World, tmp_path: Path) -> None:
    cache = ListCache(tmp_path / "tl")
    first = _refresh(world, cache, {LOTL_URL: world.lotl_xml, FR_URL: world.fr_xml})
    assert [(s.kind, s.territory, s.signature) for s in first.statuses if s.kind == "TL" and s.territory == "FR"] == [
        ("TL", "FR", "valid")
    ]
    # DE's download fails: reported, nothing stored for it
    assert any(s.problem and "download failed" in s.problem for s in first.statuses)
    lotl, nationals = cached(LOTL_URL, cache)
    assert lotl is not None and lotl.xml == world.lotl_xml and [d.xml for d in nationals] == [world.fr_xml]

    for bad in (
        world.fr_xml.replace(b"Qualified CA service", b"Rogue CA service", 1),
        b"<not-a-list/>",
        OSError("down"),
    ):
        again = _refresh(world, cache, {LOTL_URL: world.lotl_xml, FR_URL: bad})
        fr = next(s for s in again.statuses if s.source == FR_URL)
        assert fr.problem is not None
        _, nationals = cached(LOTL_URL, cache)
        assert [d.xml for d in nationals] == [world.fr_xml]  # the good copy is still there

    # the LOTL itself failing to download or verify keeps the old LOTL too
    for bad_lotl in (OSError("down"), world.lotl_xml.replace(FR_URL.encode(), b"https://evil.example/fr.xml")):
        _refresh(world, cache, {LOTL_URL: bad_lotl, FR_URL: world.fr_xml})
        lotl, _ = cached(LOTL_URL, cache)
        assert lotl is not None and lotl.xml == world.lotl_xml


def test_offline_load_from_cache_and_schedule(world: World, tmp_path: Path) -> None:
    cache = ListCache(tmp_path / "tl")
    assert stale(LOTL_URL, cache, timedelta(hours=24), NOW)  # nothing cached yet
    _refresh(world, cache, {LOTL_URL: world.lotl_xml, FR_URL: world.fr_xml})
    assert not stale(LOTL_URL, cache, timedelta(hours=24), NOW + timedelta(hours=1))
    assert stale(LOTL_URL, cache, timedelta(hours=24), NOW + timedelta(hours=25))
    signer_file = tmp_path / "lotl-signer.pem"
    signer_file.write_bytes(world.lotl_signer.pem)
    options = TrustOptions(lotl=LOTL_URL, cache_dir=cache.root, offline=True, lotl_signer_files=(signer_file,))
    lists = load_lists(options, NOW)
    assert lists is not None and lists.usable
    fr = next(s for s in lists.lists if s.territory == "FR")
    assert fr.fetched_at is not None and fr.used  # `trust show` prints when it was fetched


def test_refresh_walks_pivots_and_caches_them(world: World, tmp_path: Path) -> None:
    """The LOTL is signed by a key the anchor does not know; the pivots it names bridge the gap, are
    cached, and an offline load from the cache walks them again."""
    from tests.trust.builder import lotl as make_lotl
    from tests.trust.builder import make_cert, sign_list

    a, b = make_cert("OJ anchor key"), make_cert("LOTL key 2")
    pivot_url = "https://lotl.example/pivot-001.xml"
    fr_ptr = [("FR", FR_URL, [world.tlso])]
    pivot = sign_list(make_lotl(fr_ptr, issued=NOW - timedelta(days=100), self_signers=[b]), a)
    current = sign_list(make_lotl(fr_ptr, pivots=(pivot_url,)), b)
    cache = ListCache(tmp_path / "tl")
    pages: dict[str, bytes | Exception] = {LOTL_URL: current, FR_URL: world.fr_xml, pivot_url: pivot}
    result = asyncio.run(refresh(LOTL_URL, cache, _fetcher(pages), [asn1_x509.Certificate.load(a.der)], now=NOW))
    assert [s.kind for s in result.statuses if s.used] == ["PIVOT"] and result.lotl is not None
    assert cache.get(pivot_url) is not None
    signer_file = tmp_path / "anchor.pem"
    signer_file.write_bytes(a.pem)
    options = TrustOptions(lotl=LOTL_URL, cache_dir=cache.root, offline=True, lotl_signer_files=(signer_file,))
    lists = load_lists(options, NOW)
    assert lists is not None and lists.usable
