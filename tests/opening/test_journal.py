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


def test_entries_appended_while_verifying_are_not_a_broken_chain(stack: Stack) -> None:
    """On a running service (read committed) entries are appended while the chain is read: verify reads
    the head first, so entries after it are later ones, not a head pointing past deleted entries (the
    head is set back here to what a verify that began before the append read). Deleting the last entries
    is still detected."""
    platform = client(stack, "ville", "platform")
    tender(stack, platform)
    dsn = f"host=127.0.0.1 user=postgres dbname={stack.db_name}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        before = conn.execute("SELECT seq, hash FROM journal_head").fetchone()
        assert before is not None
        tender(stack, platform)  # appended after the head was read
        conn.execute("UPDATE journal_head SET seq = %s, hash = %s", before)
        result = _check(stack)
        assert result[0], result
        last = conn.execute("SELECT max(seq) FROM journal").fetchone()
        assert last is not None and last[0] > before[0]
        conn.execute("UPDATE journal_head SET seq = %s, hash = (SELECT hash FROM journal WHERE seq = %s)",
                     (last[0], last[0]))
        assert _check(stack)[0]
        conn.execute("DELETE FROM journal WHERE seq = %s", (last[0],))
    ok, at, reason = _check(stack)
    assert not ok and at == last[0] and "deleted" in reason, (at, reason)
