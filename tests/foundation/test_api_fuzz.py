"""schemathesis against the running API's own OpenAPI document: no 500, every error ``{code, message}``.

Bounded (a fixed number of examples per operation) so the suite stays fast; a longer run is
``bench``-style and left to operators (`schemathesis run http://.../openapi.json`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from bidproc.config import ClamdSettings
from bidproc.desk.tenants import create_api_key
from tests.foundation.stack import Stack

EXAMPLES = 40


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str, clamd_settings: ClamdSettings,
           postgres_url: str, redis_url: str) -> Iterator[tuple[Stack, str]]:
    stack = Stack(tmp_path_factory.mktemp("fuzz"), s3_endpoint, clamd_settings)
    key = create_api_key(stack.rt.db, "fuzzer", stack.rt.clock())
    yield stack, key
    stack.close()


def test_no_server_error_and_one_error_shape(fuzzed: tuple[Stack, str]) -> None:
    # schemathesis's own pytest plugin does not run on pytest 9: drive its strategies with hypothesis.
    stack, key = fuzzed
    base = f"http://127.0.0.1:{stack.port}"
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case: schemathesis.Case) -> None:
            response = case.call(base_url=base, headers={"Authorization": f"Bearer {key}"})
            where = (case.method, case.formatted_path, response.status_code, response.text[:300])
            assert response.status_code < 500, where
            if response.status_code >= 400:
                body = response.json()
                assert isinstance(body.get("code"), str) and isinstance(body.get("message"), str), where
                assert "." in body["code"], where

        call()
