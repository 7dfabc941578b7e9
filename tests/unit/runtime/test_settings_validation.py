"""Every constrained setting refuses a bad value at start, naming its variable: in
`load_settings` (a table built from the fields' own constraints, so a new bound is covered the
day it is written) and in each `aop <service>` process (exit code 2, one stderr line).
Secrets never appear in `repr(settings)` or in a refusal."""

from __future__ import annotations

import os
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import annotated_types
import pytest
from pydantic.fields import FieldInfo

from aop.runtime.errors import SettingsError
from aop.runtime.settings import Settings, load_settings, redact_url

ROOT = Path(__file__).resolve().parents[3]


def _outside(field: FieldInfo) -> list[str]:
    """Values just outside each bound of `field`, and one of the wrong type."""
    is_int = field.annotation is int
    step = 1 if is_int else 0.5
    values = []
    for bound in field.metadata:
        if isinstance(bound, annotated_types.Ge):
            values.append(str(bound.ge - step))
        elif isinstance(bound, annotated_types.Gt):
            values.append(str(bound.gt))
        elif isinstance(bound, annotated_types.Le):
            values.append(str(bound.le + step))
    if values:
        values.append("twelve")
    return values


def _choices(field: FieldInfo) -> list[str]:
    """A value outside a closed choice (Literal) or a bool, else nothing."""
    if typing.get_origin(field.annotation) is typing.Literal:
        return ["not-a-choice"]
    if field.annotation is bool:
        return ["maybe"]
    return []


#: (variable, bad value), derived from the constraints of every field.
DERIVED = [
    (f"AOP_{name.upper()}", value)
    for name, field in Settings.model_fields.items()
    for value in _outside(field) + _choices(field)
]
#: fields checked by validators, not by declared bounds.
VALIDATED = [
    ("AOP_PROGRAM_ID", "not-a-key"),
    ("AOP_MINT", "1" * 45),
    ("AOP_DATABASE_URL", "postgresql://aop:hunter2@127.0.0.1/aop"),
    ("AOP_CHANNELS", "ok," + "x" * 65),
    ("AOP_CHANNELS", "[not json"),
    ("AOP_CHANNELS", "café"),
    ("AOP_EMISSIONS", '{"alpha": -1}'),
    ("AOP_EMISSIONS", '{"alpha": 18446744073709551616}'),
    ("AOP_EMISSIONS", "{not json"),
    ("AOP_CLAIM_FORMATS", '{"alpha": "ring-v9"}'),
    ("AOP_FIRST_ROOT_SEQ", '{"alpha": -5}'),
    ("AOP_API_CORS_ORIGINS", "[broken"),
    ("AOP_GENESIS_SLOT", "-1"),
    ("AOP_PROOF_ROOTS_KEPT", "0"),
    ("AOP_PROOF_ROOTS_KEPT", "-1"),
    ("AOP_PROOF_ROOTS_KEPT", "x"),
    ("AOP_KAFKA_REPLICATION_FACTOR", "0"),
    ("AOP_KAFKA_MIN_INSYNC_REPLICAS", "0"),
    ("AOP_KAFKA_SASL_MECHANISM", "GSSAPI"),
    ("AOP_KAFKA_CLIENT_OPTIONS", '{"sasl.password": "hunter2"}'),
    ("AOP_KAFKA_CLIENT_OPTIONS", '{"ssl.key.password": "hunter2"}'),
    ("AOP_KAFKA_CLIENT_OPTIONS", '{"enable.idempotence": false}'),
    ("AOP_KAFKA_CLIENT_OPTIONS", "{not json"),
]


def test_every_constrained_field_has_bad_values_in_the_table() -> None:
    constrained = {
        name
        for name, field in Settings.model_fields.items()
        if any(isinstance(m, annotated_types.BaseMetadata) for m in field.metadata)
        or _choices(field)
    }
    covered = {variable.removeprefix("AOP_").lower() for variable, _ in DERIVED}
    assert constrained <= covered
    assert "api_port" in constrained and "log_level" in constrained  # the filter finds them


@pytest.mark.parametrize(("variable", "value"), DERIVED + VALIDATED)
def test_bad_value_is_refused_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({variable: value})
    message = str(caught.value)
    assert message.startswith(f"bad settings: {variable}: ")
    assert "hunter2" not in message


def test_database_url_password_is_masked_in_repr_str_and_refusals() -> None:
    url = "postgresql+psycopg://aop:s3cr3t-pw@db.internal:5432/aop"
    settings = load_settings({"AOP_DATABASE_URL": url})
    assert settings.database_url == url  # users of the setting get the real value
    assert "s3cr3t-pw" not in repr(settings) and "s3cr3t-pw" not in str(settings)
    assert "database_url='postgresql+psycopg://aop:***@db.internal:5432/aop'" in repr(settings)
    with pytest.raises(SettingsError) as caught:
        load_settings({"AOP_DATABASE_URL": "mysql://aop:s3cr3t-pw@db/aop", "AOP_API_PORT": "0"})
    assert str(caught.value) == (
        "bad settings: AOP_DATABASE_URL: must be a URL starting with postgresql+psycopg:// "
        "(got 'mysql://aop:***@db/aop'); "
        "AOP_API_PORT: Input should be greater than or equal to 1 (got '0')"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://u:p%40ss@h/db", "postgresql+psycopg://u:***@h/db"),
        ("https://user:key@registry:8081", "https://user:***@registry:8081"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("https://rpc.example/?api-key=k3y&x=1#f", "https://rpc.example/?api-key=***&x=***#f"),
        ("wss://u:pw@rpc.example/ws?token=k3y&flag", "wss://u:***@rpc.example/ws?token=***&flag"),
        ("http://[::1", "<unparseable URL, hidden>"),
        (None, None),
    ],
)
def test_redact_url_masks_the_password_and_query_values(url: Any, shown: Any) -> None:
    assert redact_url(url) == shown


# -- `aop <service>` processes ----------------------------------------------------------------

SERVICES = [
    (["listen"], "AOP_LISTENER_RPC_CONCURRENCY", "0"),
    (["fold"], "AOP_FOLD_TAKE_WITHIN", "0.5"),
    (["project"], "AOP_PROJECTION_SESSION_TIMEOUT_MS", "10"),
    (["settle"], "AOP_SETTLEMENT_CRASH_AT", "sometimes"),
    (["api"], "AOP_API_PORT", "65536"),
    (["db", "upgrade"], "AOP_DATABASE_URL", "sqlite:///x.db"),
    (["simulate-chain"], "AOP_SIM_WALLETS", "0"),
    (["replay", "--all"], "AOP_REPLAY_WORKERS", "65"),
    (["rebuild"], "AOP_REBUILD_LOCK_TIMEOUT_S", "-1"),
    (["parity"], "AOP_PARITY_ROOTS", "0"),
    (["run"], "AOP_LOG_LEVEL", "LOUD"),
    (["ingest"], "AOP_INGEST_RATE_BURST", "10"),
]


#: one mode is enough here: `tests/unit/settlement/test_keypair.py` covers the others.
KEYPAIR_MODES = (0o644,)
UNSAFE_SCHEMA = 'x"; DROP SCHEMA public; --'
Refusal = tuple[int, str, str]  # exit code, stdout, stderr


@pytest.fixture(scope="module")
def refusals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Refusal]:
    """Every refusal case below, its `aop` processes started at once (each takes ~1 s of
    imports): case name -> (exit code, stdout, stderr)."""
    keypairs = tmp_path_factory.mktemp("keypairs")
    cases: dict[str, tuple[list[str], dict[str, str]]] = {
        args[0]: (args, {variable: value}) for args, variable, value in SERVICES
    }
    for mode in KEYPAIR_MODES:
        path = keypairs / f"publisher-{mode:o}.json"
        path.write_text("[" + ",".join(["1"] * 64) + "]")
        path.chmod(mode)
        cases[f"keypair-{mode:o}"] = (["settle"], {"AOP_PUBLISHER_KEYPAIR": str(path)})
    cases["schema"] = (["api"], {"AOP_DATABASE_SCHEMA": UNSAFE_SCHEMA})
    tokens = keypairs / "ingest-tokens"
    tokens.write_text("irc sha256:" + "0" * 64 + "\n")
    tokens.chmod(0o640)
    cases["tokens"] = (["ingest"], {"AOP_INGEST_TOKENS_FILE": str(tokens)})
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AOP_")}
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "aop.cli", *args],
            env={**clean, **env},
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (args, env) in cases.items()
    }
    out = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=120)
        out[name] = (process.returncode, stdout, stderr)
    return out


@pytest.mark.parametrize(("args", "variable", "value"), SERVICES)
def test_service_refuses_to_start_with_a_bad_setting(
    refusals: dict[str, Refusal], args: list[str], variable: str, value: str
) -> None:
    code, stdout, stderr = refusals[args[0]]
    assert code == 2, stderr[-2000:]
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr[-2000:]
    assert lines[0].startswith(f"aop {args[0]}: bad settings: {variable}: ")
    assert lines[0].endswith(f"(got {value!r})")
    assert stdout == ""


@pytest.mark.parametrize("mode", KEYPAIR_MODES)
def test_settle_refuses_a_keypair_file_readable_by_others(
    refusals: dict[str, Refusal], mode: int
) -> None:
    code, _, stderr = refusals[f"keypair-{mode:o}"]
    assert code == 2
    path = stderr.splitlines()[-1].split(" file ", 1)[1].split(" must ", 1)[0]
    assert path.endswith(f"publisher-{mode:o}.json")
    assert stderr.splitlines()[-1] == (
        f"aop settle: AOP_PUBLISHER_KEYPAIR: file {path} must not be accessible to group or "
        f"others (mode {mode:#o}); operator action: chmod 600 {path}"
    )


def test_ingest_refuses_a_tokens_file_readable_by_others_before_connecting(
    refusals: dict[str, Refusal],
) -> None:
    code, _, stderr = refusals["tokens"]
    assert code == 2
    path = stderr.splitlines()[-1].split(" file ", 1)[1].split(" must ", 1)[0]
    assert path.endswith("ingest-tokens")
    assert stderr.splitlines()[-1] == (
        f"aop ingest: AOP_INGEST_TOKENS_FILE: file {path} must not be accessible to group or "
        f"others (mode 0o640); operator action: chmod 600 {path}"
    )


def test_api_refuses_an_unsafe_schema_name_before_connecting(
    refusals: dict[str, Refusal],
) -> None:
    code, _, stderr = refusals["schema"]
    assert code == 2
    assert stderr.splitlines()[-1] == (
        "aop api: AOP_DATABASE_SCHEMA must be a plain identifier (letters, digits, _; at most 63) "
        f"(got {UNSAFE_SCHEMA!r})"
    )
