"""Schemathesis fuzzes every operation of the served API from its own OpenAPI schema: no 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

# Bounded so the whole suite stays fast: 50 generated requests per operation.
FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))


def test_no_input_makes_a_server_error(seed_source, serve_api):
    seed_source(days=1, faults=True)
    schema = schemathesis.openapi.from_url(f"{serve_api()}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == {"/data", "/variables", "/health"}

    statuses: dict[str, set[int]] = {op.path: set() for op in operations}
    for operation in operations:

        @FUZZ
        @given(case=operation.as_strategy())
        def fuzz(case):
            response = case.call_and_validate(checks=[not_a_server_error])
            statuses[case.path].add(response.status_code)

        fuzz()
    assert {200, 422} <= statuses["/data"]  # the examples succeed, and fuzzed input is refused
