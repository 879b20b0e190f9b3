"""The metadata database unreachable is an outage (``database.unavailable``: 503, waited out by the
pipeline), not an internal error; a lease survives a database blip."""

from __future__ import annotations

import time
from typing import cast

import pytest
from sqlalchemy import text

from bidproc.errors import HTTP_STATUS, RETRY_POLICY, BidprocError, Code, Retry
from bidproc.metadata.db import Database
from bidproc.pipeline import lease
from bidproc.runtime import Runtime
from tests.services import free_port


@pytest.mark.parametrize("statement", ["select 1", "update bids set status = 'x' where false"])
def test_unreachable_postgresql_is_database_unavailable(statement: str) -> None:
    db = Database(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing?connect_timeout=2")
    with pytest.raises(BidprocError) as raised, db.session() as s:
        s.execute(text(statement))
    assert raised.value.code is Code.DATABASE_UNAVAILABLE
    assert HTTP_STATUS[Code.DATABASE_UNAVAILABLE] == 503 and RETRY_POLICY[Code.DATABASE_UNAVAILABLE] is Retry.WAIT


def test_sql_errors_that_are_not_outages_stay_what_they_are(tmp_path: object) -> None:
    db = Database("sqlite://")
    with pytest.raises(Exception) as raised, db.session() as s:
        s.execute(text("select * from no_such_table"))
    assert not isinstance(raised.value, BidprocError)


def test_a_lease_outlives_a_database_blip(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed renewal used to end the renewing thread (the lease then ran out under a live worker and
    another took the bid over), and a failed release replaced the block's own error."""
    calls: list[int] = []

    def claim(rt: Runtime, bid_id: str, owner: str, seconds: int) -> bool:
        calls.append(1)
        if len(calls) == 2:
            raise BidprocError(Code.DATABASE_UNAVAILABLE, "down")
        return True

    def release(rt: Runtime, bid_id: str, owner: str) -> None:
        raise BidprocError(Code.DATABASE_UNAVAILABLE, "down")

    monkeypatch.setattr(lease, "claim", claim)
    monkeypatch.setattr(lease, "release", release)
    with pytest.raises(ValueError, match="the stage's own error"), lease.held(cast(Runtime, None), "b", "o", 3) as mine:
        assert mine
        time.sleep(3.6)  # renewals every second: the second fails, the third and later go on
        raise ValueError("the stage's own error")
    assert len(calls) >= 4
