"""The journal: a row edited, deleted or reordered directly in PostgreSQL is detected and located."""

from __future__ import annotations

import psycopg

from bidproc.journal.chain import verify
from tests.foundation.stack import Stack
from tests.opening.helpers import client, tender


def _check(stack: Stack) -> tuple[bool, int | None, str]:
    with stack.rt.db.session() as s:
        result = verify(s)
    return result.ok, result.broken_at, result.reason


def test_edit_delete_and_reorder_are_each_detected_and_located(stack: Stack) -> None:
    platform = client(stack, "ville", "platform")
    for _ in range(6):  # entries 1 (the key) to 7
        tender(stack, platform)
    assert _check(stack)[0]
    dsn = f"host=127.0.0.1 user=postgres dbname={stack.db_name}"

    def sql(statement: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(statement)

    sql("CREATE TABLE journal_copy AS SELECT * FROM journal")  # the genuine chain, to restore between cases

    def restore() -> None:
        sql("DELETE FROM journal")
        sql("INSERT INTO journal SELECT * FROM journal_copy")
        assert _check(stack)[0]

    # edit: one field of entry 3 (its detail), its hash left as it was
    sql("UPDATE journal SET detail = '{\"reference\": \"forged\"}' WHERE seq = 3")
    ok, at, reason = _check(stack)
    assert not ok and at == 3 and "hash" in reason
    restore()
    # delete: a middle entry disappears
    sql("DELETE FROM journal WHERE seq = 4")
    ok, at, reason = _check(stack)
    assert not ok and at == 5 and "4 is missing" in reason, (at, reason)
    restore()
    # reorder: entries 4 and 5 swap places (their sequence numbers are exchanged)
    sql("UPDATE journal SET seq = -4 WHERE seq = 4")
    sql("UPDATE journal SET seq = 4 WHERE seq = 5")
    sql("UPDATE journal SET seq = 5 WHERE seq = -4")
    ok, at, reason = _check(stack)
    assert not ok and at == 4 and "link" in reason
