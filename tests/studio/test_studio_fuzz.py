"""Fuzz every operation from the app's own OpenAPI schema (schemathesis), with valid and invalid data:
no 5xx, documented status codes and content types, responses that match the schema.

100 examples per operation and mode (the bar issue 18 sets). Auth is off and the limits are high so that
generated requests reach the deep code paths; a worker thread
runs the jobs that valid requests create.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from studio.studio_helpers import require

try:
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance
except ImportError:  # pragma: no cover - exercised only without the package
    schemathesis = None


@pytest.fixture
def api_schema(make_settings, catalog):
    from fastapi.testclient import TestClient

    from aigc.studio.app import create_app

    app = create_app(make_settings(auth="off", rate_limit_per_minute=100_000, queue_limit=100_000, max_images_per_job=4), catalog=catalog)
    require(schemathesis is not None, "the schemathesis package")
    with TestClient(app):  # runs the lifespan: the executor's worker thread takes the generated jobs
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


def test_fuzz_every_operation_from_the_schema(api_schema):
    require(schemathesis is not None, "the schemathesis package")
    from hypothesis import given
    from hypothesis.errors import Unsatisfiable

    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 9
    failures = []
    for operation, mode in [(o, m) for o in operations for m in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)]:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def fuzz(case):
            case.call_and_validate(checks=checks)

        try:
            fuzz()
        except Unsatisfiable:  # an operation without inputs has no invalid data to send
            assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label
        except Exception as error:  # collect every operation's failure, then report them together
            failures.append(f"{operation.label} ({mode.value} data): {error}")
    assert not failures, "\n\n".join(failures)
