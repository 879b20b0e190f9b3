"""Trusted lists fetched online, kept on disk: the last copy that verified is never replaced by a bad one.

pyhanko's ``eutl_fetch.FileSystemTLCache`` stores whatever was downloaded and forgets it on expiry; we
need the opposite (keep the last *good* copy, with when it was fetched), so this small store is written
by hand. Layout under the cache directory: ``<sha256 of the URL>.xml`` and ``.json`` (url, fetched_at).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from asn1crypto import x509
from pyhanko.sign.validation.qualified import eutl_parse

from bidproc.signature.trust.documents import Document, ListStatus, SignatureState, _check
from bidproc.signature.trust.pivots import bootstrap, pivot_urls

log = logging.getLogger(__name__)
Fetch = Callable[[str], Awaitable[bytes]]
MAX_LIST_BYTES = 32 * 1024 * 1024  # the largest national lists are a few MB


class ListCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _paths(self, url: str) -> tuple[Path, Path]:
        key = hashlib.sha256(url.encode()).hexdigest()
        return self.root / f"{key}.xml", self.root / f"{key}.json"

    def get(self, url: str) -> Document | None:
        xml_path, meta_path = self._paths(url)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            return Document(url, xml_path.read_bytes(), datetime.fromisoformat(meta["fetched_at"]))
        except (OSError, ValueError, KeyError):
            return None

    def put(self, doc: Document) -> None:
        """Atomic replacement (write aside, then rename), so a crash never leaves half a list."""
        self.root.mkdir(parents=True, exist_ok=True)
        xml_path, meta_path = self._paths(doc.source)
        fetched = (doc.fetched_at or datetime.now(UTC)).isoformat()
        for path, data in (
            (xml_path, doc.xml),
            (meta_path, json.dumps({"url": doc.source, "fetched_at": fetched}).encode()),
        ):
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)


def http_fetch(session: aiohttp.ClientSession, timeout: float = 60.0) -> Fetch:
    async def fetch(url: str) -> bytes:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout), raise_for_status=True) as resp:
            data = await resp.content.read(MAX_LIST_BYTES + 1)
            if len(data) > MAX_LIST_BYTES:
                raise ValueError(f"{url}: larger than {MAX_LIST_BYTES} bytes")
            return data

    return fetch


@dataclass(frozen=True)
class RefreshResult:
    statuses: tuple[ListStatus, ...]
    lotl: Document | None
    nationals: tuple[Document, ...]


async def _one(
    url: str, kind: str, signers: Sequence[x509.Certificate], cache: ListCache, fetch: Fetch, now: datetime
) -> tuple[ListStatus, Document | None]:
    """Fetch, verify, store if good; otherwise keep (and return) the last good copy."""
    old = cache.get(url)
    try:
        doc = Document(url, await fetch(url), now)
    except Exception as exc:  # network, HTTP status, size: all mean "keep what we have"
        status = ListStatus(
            kind, "?", url, SignatureState.UNREADABLE, fetched_at=now, problem=f"download failed: {exc}"
        )
        return status, old
    status, content = _check(doc, kind, signers, now)
    if content is None:
        kept = f"; last good copy from {old.fetched_at} kept" if old else "; no earlier copy"
        return replace(status, problem=f"{status.problem}{kept}"), old
    cache.put(doc)
    return status, doc


async def refresh(
    lotl_url: str,
    cache: ListCache,
    fetch: Fetch,
    lotl_signers: Sequence[x509.Certificate] | None = None,
    territories: set[str] | None = None,
    now: datetime | None = None,
) -> RefreshResult:
    """Download the LOTL and the national lists it points to; each replaces its cached copy only if it verifies."""
    now = now or datetime.now(UTC)
    signers = list(lotl_signers) if lotl_signers else eutl_parse.ojeu_bootstrap_lotl_tlso_certs()
    statuses: list[ListStatus] = []
    signers = await _signers_via_pivots(lotl_url, cache, fetch, signers, now, statuses)
    lotl_status, lotl = await _one(lotl_url, "LOTL", signers, cache, fetch, now)
    statuses.append(lotl_status)
    nationals: list[Document] = []
    if lotl is not None:
        # the cached copy verified when it was stored; parse only its signed part again
        _, content = _check(lotl, "LOTL", signers, now)
        try:
            refs = eutl_parse.parse_lotl_unsafe(content).references if content else []
        except Exception as exc:  # signed but malformed: report it, keep the cached national lists
            statuses.append(replace(lotl_status, problem=f"LOTL content unreadable: {exc}"))
            refs = []
        for ref in refs:
            if eutl_parse.LOTL_RULE in ref.scheme_rules:
                continue
            if territories is not None and ref.territory.upper() not in territories:
                continue
            status, doc = await _one(ref.location_uri, "TL", ref.tlso_certs, cache, fetch, now)
            statuses.append(status)
            if doc is not None:
                nationals.append(doc)
    return RefreshResult(tuple(statuses), lotl, tuple(nationals))


async def _signers_via_pivots(
    url: str, cache: ListCache, fetch: Fetch, signers: list[x509.Certificate], now: datetime, out: list[ListStatus]
) -> list[x509.Certificate]:
    """The LOTL's signers: ``signers`` if they verify it, else those found by walking its pivots
    (each pivot fetched unless cached; cached once the walk verifies the LOTL)."""
    try:
        doc = Document(url, await fetch(url), now)
    except Exception:  # _one reports the failed download
        return signers
    if _check(doc, "LOTL", signers, now)[1] is not None or not pivot_urls(doc):
        return signers
    pivots: dict[str, Document] = {}
    for pivot in pivot_urls(doc):
        known = cache.get(pivot)
        try:
            pivots[pivot] = known or Document(pivot, await fetch(pivot), now)
        except Exception as exc:  # bootstrap reports the missing pivot
            log.info("pivot %s not fetched: %s", pivot, exc)
    found, statuses = bootstrap(doc, pivots, signers)
    out.extend(statuses)
    if _check(doc, "LOTL", found, now)[1] is None:
        return signers
    for pivot_doc in pivots.values():
        cache.put(pivot_doc)
    return found


def cached_pivots(lotl: Document, cache: ListCache) -> dict[str, Document]:
    docs = {url: cache.get(url) for url in pivot_urls(lotl)}
    return {url: d for url, d in docs.items() if d is not None}


def cached(lotl_url: str, cache: ListCache) -> tuple[Document | None, tuple[Document, ...]]:
    """The last good copies of the LOTL and of the national lists it points to (no network)."""
    lotl = cache.get(lotl_url)
    if lotl is None:
        return None, ()
    try:
        refs = eutl_parse.parse_lotl_unsafe(lotl.xml.decode("utf-8")).references
    except Exception:  # the caller verifies the LOTL and reports it; no pointers to follow then
        return lotl, ()
    docs = (cache.get(r.location_uri) for r in refs if eutl_parse.LOTL_RULE not in r.scheme_rules)
    return lotl, tuple(d for d in docs if d is not None)


def stale(lotl_url: str, cache: ListCache, max_age: timedelta, now: datetime) -> bool:
    doc = cache.get(lotl_url)
    return doc is None or doc.fetched_at is None or now - doc.fetched_at > max_age
