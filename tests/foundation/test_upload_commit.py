"""An upload whose database connection drops at COMMIT: the answer matches what the database kept, and the
file's bytes are never lost (bidproc's rule: an infrastructure failure is a wait, never lost data).

Real PostgreSQL, real dropped connections: the backend serving the upload's transaction is terminated
(pg_terminate_backend, from another connection) at the moment of its COMMIT. Two cases:
- before the COMMIT reaches the server: the server rolled back, so the upload answers database.unavailable,
  removes its object, and the client's retry of the same file is accepted (not file.duplicate);
- after the server committed, before its answer came back (the driver's commit is wrapped to do this, the
  one point of the test that is staged): the upload answers success, and the stored bytes are the file;
- the same, with the database then refusing connections while the upload looks for its row: the answer is
  database.unavailable and the object is kept, so the row is found with its bytes once the database is back.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, select

from bidproc.desk.deposit import Desk
from bidproc.desk.tenants import create_api_key
from bidproc.encryption.stream import decrypt_bytes
from bidproc.errors import RETRY_POLICY, BidprocError, Code, Retry
from bidproc.metadata.models import BidRow, DocumentRow, TenantRow
from bidproc.runtime import Runtime
from tests.archive.bids import local_settings

ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
DATA = os.urandom(200_000)


@pytest.fixture
def desk(tmp_path: Path, postgres_url: str) -> Iterator[tuple[Desk, str, str]]:
    rt = Runtime(local_settings(tmp_path, BIDPROC_DATABASE_URL=postgres_url))
    try:
        rt.migrate()
        create_api_key(rt.db, "platform-a", rt.clock())
        with rt.db.session() as s:
            tenant = s.execute(select(TenantRow).where(TenantRow.name == "platform-a")).scalar_one().id
        d = Desk(rt)
        tender = d.create_tender(
            tenant, f"T-{uuid.uuid4().hex[:8]}", "Travaux", "Ville", rt.clock() + timedelta(days=2)
        )
        yield d, tenant, d.create_bid(tenant, tender.id, "ACME").id
    finally:
        rt.close()


def _terminate(pid: int) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)


def _refuse_connections(desk: Desk, refuse: bool) -> None:
    """The database down for bidproc: new connections refused, those open terminated."""
    name = desk.rt.db.engine.url.database
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if refuse else "true"}')
        if refuse:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


def _drop_once(desk: Desk, when: str) -> Callable[[], None]:
    """Drop the upload's connection at its COMMIT (``before`` the server sees it, or ``after`` it committed)."""
    engine = desk.rt.db.engine
    fired: list[int] = []
    if when == "before":

        def on_commit(conn: Any) -> None:
            if not fired:
                fired.append(conn.connection.dbapi_connection.info.backend_pid)
                _terminate(fired[0])

        event.listen(engine, "commit", on_commit)
        return lambda: event.remove(engine, "commit", on_commit)
    original = engine.dialect.do_commit

    def do_commit(dbapi_connection: Any) -> None:
        original(dbapi_connection)  # committed on the server
        if not fired and when == "after, staying down":
            fired.append(0)
            _refuse_connections(desk, True)
            dbapi_connection.cursor().execute("SELECT 1")
        if not fired:
            fired.append(dbapi_connection.dbapi_connection.info.backend_pid)  # a pool's proxy
            _terminate(fired[0])
            dbapi_connection.cursor().execute("SELECT 1")  # the connection is gone: the real driver error, as if the
            #                                       COMMIT's answer had been lost on the way back

    engine.dialect.do_commit = do_commit  # type: ignore[method-assign]
    return lambda: setattr(engine.dialect, "do_commit", original)


def _rows(desk: Desk, bid_id: str) -> list[DocumentRow]:
    with desk.rt.db.reading() as s:
        return list(s.execute(select(DocumentRow).where(DocumentRow.bid_id == bid_id)).scalars())


def _stored_plaintext(desk: Desk, bid_id: str, object_key: str) -> bytes:
    with desk.rt.db.reading() as s:
        bid = s.get(BidRow, bid_id)
        assert bid is not None and bid.wrapped_key is not None
        key = desk.rt.service_key.unwrap(bid.wrapped_key)
    return decrypt_bytes(key, desk.rt.store.get_bytes(object_key), context=object_key.encode())


def test_connection_dropped_before_commit_answers_retry_and_keeps_nothing_half_done(
    desk: tuple[Desk, str, str],
) -> None:
    d, tenant, bid_id = desk
    upload = d.begin_upload(tenant, bid_id, "offre.pdf")
    upload.write(DATA)
    undo = _drop_once(d, "before")
    try:
        with pytest.raises(BidprocError) as raised:
            upload.commit()
    finally:
        undo()
    assert raised.value.code is Code.DATABASE_UNAVAILABLE and RETRY_POLICY[raised.value.code] is Retry.WAIT
    assert _rows(d, bid_id) == [] and not d.rt.store.exists(upload.object_key)  # no row, so no orphan object
    retry = d.begin_upload(tenant, bid_id, "offre.pdf")  # the client's retry: accepted, not file.duplicate
    retry.write(DATA)
    doc = retry.commit()
    assert [r.id for r in _rows(d, bid_id)] == [doc.id]
    assert _stored_plaintext(d, bid_id, doc.object_key) == DATA


def test_connection_dropped_after_commit_answers_success_and_keeps_the_bytes(desk: tuple[Desk, str, str]) -> None:
    d, tenant, bid_id = desk
    upload = d.begin_upload(tenant, bid_id, "offre.pdf")
    upload.write(DATA)
    undo = _drop_once(d, "after")
    try:
        doc = upload.commit()  # the row was saved: a success, though the COMMIT's answer was lost
    finally:
        undo()
    assert [r.id for r in _rows(d, bid_id)] == [doc.id] and doc.name == "offre.pdf" and doc.size == len(DATA)
    assert _stored_plaintext(d, bid_id, doc.object_key) == DATA  # the row's bytes are there
    with pytest.raises(BidprocError) as again:
        d.begin_upload(tenant, bid_id, "offre.pdf")
    assert again.value.code is Code.FILE_DUPLICATE  # the same file again is a duplicate, and rightly so


def test_database_down_after_commit_keeps_the_object_and_answers_retry(desk: tuple[Desk, str, str]) -> None:
    """The row saved, then the database down while the upload looks for it: the answer is a wait, and the
    object stays, so the row the database kept has its bytes once it is back."""
    d, tenant, bid_id = desk
    upload = d.begin_upload(tenant, bid_id, "offre.pdf")
    upload.write(DATA)
    undo = _drop_once(d, "after, staying down")
    try:
        with pytest.raises(BidprocError) as raised:
            upload.commit()
    finally:
        undo()
        _refuse_connections(d, False)
    assert raised.value.code is Code.DATABASE_UNAVAILABLE and RETRY_POLICY[raised.value.code] is Retry.WAIT
    [row] = _rows(d, bid_id)  # the database is back: it kept the row...
    assert row.id == upload.doc_id and _stored_plaintext(d, bid_id, row.object_key) == DATA  # ...and its bytes
