"""Where the lists come from: files (offline) or a URL (online, cached under the data dir, refreshed
when older than ``signature.trust_refresh_hours``; offline, the last good cached copy serves)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from asn1crypto import pem, x509

from bidproc.signature.trust.assess import TrustSettings
from bidproc.signature.trust.cache import ListCache, cached, cached_pivots, http_fetch, refresh, stale
from bidproc.signature.trust.documents import Document
from bidproc.signature.trust.lists import TrustedLists, load


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def read_certificates(paths: Sequence[Path]) -> tuple[bytes, ...]:
    """DER certificates from PEM (one or many) or DER files; raises OSError for an unreadable file."""
    out: list[bytes] = []
    for path in paths:
        data = path.read_bytes()
        if pem.detect(data):
            out += [der for kind, _, der in pem.unarmor(data, multiple=True) if kind == "CERTIFICATE"]
        else:
            out.append(data)
    return tuple(out)


@dataclass(frozen=True)
class TrustOptions:
    lotl: str | None = None  # file path or URL
    trusted_lists: tuple[Path, ...] = ()
    equivalent_ca_files: tuple[Path, ...] = ()
    lotl_signer_files: tuple[Path, ...] = ()  # none: the Official Journal certificates bundled with pyhanko
    cache_dir: Path | None = None
    refresh_after: timedelta = timedelta(hours=24)
    offline: bool = False


def _lotl_signers(options: TrustOptions) -> list[x509.Certificate] | None:
    ders = read_certificates(options.lotl_signer_files)
    return [x509.Certificate.load(d) for d in ders] or None


def refresh_online(
    options: TrustOptions, now: datetime | None = None
) -> tuple[Document | None, tuple[Document, ...], list[str]]:
    """Fetch the LOTL at ``options.lotl`` and its lists into the cache; returns what is now cached."""
    assert options.lotl is not None and options.cache_dir is not None
    url, cache = options.lotl, ListCache(options.cache_dir)

    async def go() -> list[str]:
        async with aiohttp.ClientSession() as session:
            result = await refresh(url, cache, http_fetch(session), _lotl_signers(options), now=now)
        return [f"{s.kind} {s.territory} {s.source}: {s.problem}" for s in result.statuses if s.problem]

    problems = asyncio.run(go())
    lotl, nationals = cached(url, cache)
    return lotl, nationals, problems


def load_lists(options: TrustOptions, at: datetime | None = None) -> TrustedLists | None:
    """The verified lists ``options`` name (``None`` when none is configured). Never raises for a bad list."""
    if options.lotl is None and not options.trusted_lists:
        return None
    now = at or datetime.now(UTC)
    lotl: Document | None = None
    nationals: list[Document] = []
    pivots: dict[str, Document] = {}
    if options.lotl is not None and is_url(options.lotl):
        cache = ListCache(options.cache_dir or Path("trusted-lists"))
        if not options.offline and stale(options.lotl, cache, options.refresh_after, datetime.now(UTC)):
            try:
                refresh_online(replace(options, cache_dir=cache.root))
            except (aiohttp.ClientError, TimeoutError, OSError):
                pass  # the last good copy serves; load() reports its age and freshness
        lotl, cached_nationals = cached(options.lotl, cache)
        nationals += cached_nationals
        pivots = cached_pivots(lotl, cache) if lotl is not None else {}
    elif options.lotl is not None:
        path = Path(options.lotl)
        lotl = Document(str(path), path.read_bytes(), None)
    nationals += [Document(str(p), p.read_bytes(), None) for p in options.trusted_lists]
    return load(lotl, nationals, now, _lotl_signers(options), pivots)


def trust_settings(options: TrustOptions, at: datetime | None = None) -> TrustSettings:
    return TrustSettings(lists=load_lists(options, at), equivalent_cas=read_certificates(options.equivalent_ca_files))


def anchors_from(lists: TrustedLists | None) -> tuple[bytes, ...]:
    """Self-signed certificates of the usable lists' CA/QC and QTST services, as chain-validation anchors.

    Every format's validator takes plain anchors (``ValidationPolicy.trust_anchors``), so this is how a
    signature under a listed root validates with ``--lotl`` alone, as in EU DSS. Listed *intermediate*
    CAs are left out on purpose: pyhanko-certvalidator 0.33 cannot validate a CRL signed by a trust
    anchor that is not self-signed (``ValidationPath.truncate_to_issuer_and_append`` looks for the
    anchor's own issuer), so an intermediate anchor would turn a signature that passes under its root
    into INDETERMINATE. The qualification step uses listed intermediates all the same. Whether a service
    was *granted* at the signing time is also the qualification step's business.
    """
    if lists is None:
        return ()
    reg = lists.registry
    seen: dict[bytes, None] = {}
    for auth in [*reg.known_certificate_authorities, *reg.known_timestamp_authorities]:
        cert = getattr(auth, "certificate", None)
        if cert is not None and cert.self_signed in {"maybe", "yes"}:
            seen[cert.dump()] = None
    return tuple(seen)
