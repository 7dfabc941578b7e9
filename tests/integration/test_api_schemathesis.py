"""Schemathesis fuzzes every operation of /openapi.json against a real server (uvicorn on
127.0.0.1, in a thread) over real data: no 5xx, and every answer fits the document (status
code, content type, headers, body schema), also for inputs that break the schema.

Half of the schema-valid cases get real path parameters (a stored channel, root_seq and
wallet) so the 200 answers are fuzzed too, not only the 404s.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from psycopg import sql
from schemathesis import GenerationMode
from schemathesis.specs.openapi import checks
from solders.pubkey import Pubkey

from aop.api.app import create_app
from aop.api.openapi import openapi_document
from aop.api.routes import OPERATIONS
from aop.runtime.settings import load_settings
from tests.conftest import libpq_url
from tests.integration.test_api import Seed, seed_database

MAX_EXAMPLES = 30
CHECKS = [
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    checks.unsupported_method,
]


@pytest.fixture(scope="module")
def fuzz_seed(database_url: str) -> Iterator[Seed]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield seed_database(
            load_settings({"AOP_DATABASE_URL": database_url, "AOP_DATABASE_SCHEMA": schema})
        )
    finally:
        with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="module")
def api_url(fuzz_seed: Seed) -> Iterator[str]:
    """A uvicorn server of the app on a free port of 127.0.0.1, run in a thread."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(fuzz_seed.settings),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _real_parameters(seed: Seed) -> dict[str, list[Any]]:
    wallets = [str(Pubkey(w)) for w in sorted(seed.roots["Alpha"][5])[:50]]
    channels = ["Alpha", "alpha", seed.configs["Alpha"], "beta", "ringy"]
    return {"channel": channels, "wallet": wallets, "root_seq": [1, 2, 3, 4, 5]}


def _with_real_parameters(case: Any, real: dict[str, list[Any]]) -> None:
    """Half of the cases (by a hash of their parameters) get stored channel/root/wallet."""
    params = dict(case.path_parameters or {})
    pick = zlib.crc32(repr(sorted(params.items())).encode())
    if params and not pick % 2:
        for name, values in real.items():
            if name in params:
                params[name] = values[pick % len(values)]
        case.path_parameters = params


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_answers_conform_to_openapi_and_never_5xx(
    api_url: str, fuzz_seed: Seed, mode: GenerationMode
) -> None:
    """Schema-valid and schema-breaking requests for every operation: no 5xx, every answer
    as documented (negative ones rejected with a 4xx)."""
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    real = _real_parameters(fuzz_seed)
    operations = [result.ok() for result in schema.get_all_operations()]
    fuzzed = {operation.path for operation in operations}
    # every route but the document itself, which schemathesis leaves out
    assert fuzzed == set(openapi_document(OPERATIONS)["paths"]) - {"/openapi.json"}
    for operation in operations:
        try:
            strategy = operation.as_strategy(generation_mode=mode)
        except Exception as exc:  # an operation without anything to break
            pytest.fail(f"{operation.label}: no {mode} strategy: {exc}")

        @given(case=strategy)
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            if mode.is_positive:
                _with_real_parameters(case, real)
            response = case.call(timeout=30)
            assert response.status_code < 500, (
                case.method,
                case.formatted_path,
                response.text[:300],
            )
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            # nothing to break: operations without parameters or body (healthz, metrics...)
            assert mode == GenerationMode.NEGATIVE, operation.label
            assert not operation.path_parameters and not operation.query, operation.label
