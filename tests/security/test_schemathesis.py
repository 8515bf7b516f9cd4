"""schemathesis over ``/authgate/openapi.json`` against a live server, as an admin: no
operation answers a 5xx to anything the document lets a client send, or to the edge
cases schemathesis derives from it (both generation modes: valid and invalid input).

Bounded and repeatable: a fixed seed, ``derandomize``, a few examples per operation, no
example database; on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from authgate.runtime import Runtime
from tests.api.service import Service, serve

EXAMPLES_PER_OPERATION = 20


@pytest.fixture
def live(make_settings: Any) -> Iterator[Service]:
    # Logins are rate limited per address; the limit is tested elsewhere, not here.
    runtime = Runtime(make_settings(login_rate_limit="100000/minute"))
    runtime.start()
    try:
        with serve(runtime) as service:
            yield service
    finally:
        runtime.close()


def _server_errors(live: Service, operation: Any, mode: GenerationMode) -> list[str]:
    """Run one operation's examples in ``mode``; what answered 5xx (or a traceback)."""
    found: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: every failure is kept
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(headers=live.admin, timeout=30)
        if response.status_code >= 500 or "Traceback" in response.text:
            found.append(
                f"{case.method} {case.formatted_path} query={case.query} body={case.body!r}: "
                f"{response.status_code} {response.text[:300]}"
            )

    try:
        run()
    except Unsatisfiable:
        # Nothing in this operation can be made invalid (no parameters, no body).
        assert mode is GenerationMode.NEGATIVE
    return found


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_operation_answers_with_a_server_error(live: Service, mode: GenerationMode) -> None:
    # The pytest plugin's lazy loader (from_fixture) does not run under this pytest, so
    # the operations are driven here, each with hypothesis, over the same strategies.
    schema = schemathesis.openapi.from_url(f"{live.base_url}/authgate/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())
    paths = {operation.path for operation in operations}
    assert {"/authgate/v1/audit", "/authgate/v1/tokens", "/authgate/v1/users"} <= paths
    errors: list[str] = []
    for operation in operations:
        errors += _server_errors(live, operation, mode)
    assert errors == []
