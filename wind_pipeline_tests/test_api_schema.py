"""Schemathesis fuzzes every operation of the served API from its own OpenAPI schema."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

KEY = "fuzz-key"  # on, so the checks also see that a missing or wrong key is refused
# Bounded so the whole suite stays fast: 50 generated requests per operation.
FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))


def test_fuzzed_requests_pass_the_schema_checks(seed_source, serve_api):
    seed_source(days=1, turbines=3, faults=True)
    schema = schemathesis.openapi.from_url(f"{serve_api(api_key=KEY)}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = {"/data", "/days", "/variables", "/turbines", "/health"}
    assert {op.path for op in operations} == paths

    statuses: dict[str, set[int]] = {op.path: set() for op in operations}
    for operation in operations:

        @FUZZ
        @given(case=operation.as_strategy())
        def fuzz(case):
            # Every default check (no 5xx, documented status codes, content types and response
            # schemas, invalid input refused) but one: a schema-valid end <= start is refused
            # on purpose, a rule across two parameters that OpenAPI cannot state.
            response = case.call_and_validate(
                headers={"X-API-Key": KEY}, excluded_checks=[positive_data_acceptance]
            )
            statuses[case.path].add(response.status_code)

        fuzz()
    assert 422 in statuses["/data"]  # fuzzed input is refused
    # random timestamps seldom make a valid range: a fleet query as documented passes every check
    data = next(op for op in operations if op.path == "/data")
    for query in (
        {"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z"},
        {
            "start": "2024-01-01T06:00:00Z",
            "end": "2024-01-01T07:00:00Z",
            "turbines": "WTG02,WTG03",
            "variables": "power",
            "format": "csv",
        },
    ):
        response = data.Case(query=query).call_and_validate(headers={"X-API-Key": KEY})
        assert response.status_code == 200
