"""The wheel, installed non-editable into a fresh venv, runs: `aop` from site-packages builds a
tree, encodes and decodes a SlotBatch with the packaged schemas, migrates the test database
with the packaged Alembic scripts, and serves `aop api` until /readyz answers.

The fresh venv gets the project's dependencies from the dev venv through a `.pth` path line
(a path line only adds the directory; it installs no import hook, so the dev venv's editable
`aop` stays out), and every command runs outside the checkout: whatever `aop` imports comes
from the wheel.
"""

from __future__ import annotations

import json
import os
import site
import socket
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from tests.conftest import libpq_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; returns its bin directory."""
    work = tmp_path_factory.mktemp("wheel")
    dist = work / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("attention_oracle_pipeline-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "aop/schemas/avro/SlotBatch.avsc" in names
    assert "aop/projections/migrations/script.py.mako" in names
    assert not any(n.split("/")[0] in ("core", "api", "streams", "tests") for n in names)
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = next((venv / "lib").glob("python3.*/site-packages"))
    (purelib / "aop_dev_dependencies.pth").write_text(
        "\n".join(p for p in site.getsitepackages() if p.startswith(sys.prefix)) + "\n"
    )
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    return venv / "bin"


def run(bin_dir: Path, *argv: str, env: dict[str, str] | None = None, stdin: str = "") -> str:
    result = subprocess.run(
        [str(bin_dir / argv[0]), *argv[1:]],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=bin_dir,  # not the checkout
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **(env or {})},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_installed_aop_comes_from_the_wheel(installed: Path) -> None:
    where = run(installed, "python", "-c", "import aop, aop.core; print(aop.core.__file__)")
    assert "site-packages/aop/core/__init__.py" in where, where
    assert str(ROOT) not in where


def test_the_installed_aop_builds_a_tree(installed: Path, tmp_path: Path) -> None:
    dataset = tmp_path / "d.json"
    dataset.write_text(
        json.dumps(
            [{"wallet": "2pHjZLqsSqi35xuYHmZbZBM1xfYV6Ruv57r3eFPvZZaD", "cumulative_total": 10**9}]
        )
    )
    out = json.loads(
        run(installed, "aop", "tree", "build", "--format", "global-v4", "--root-seq", "7",
            "--input", str(dataset))
    )  # fmt: skip
    # reference §G7.2: the V4 leaf of W0 with 1e9 at root_seq 7; one leaf is the root
    assert out["root"] == "e6c7c2e8742eb51b99da1e0378b39f67a6c4da5e46b15fff956959d108f66ab0"


def test_the_installed_aop_encodes_and_decodes_a_slot_batch(installed: Path) -> None:
    script = """
from aop.log.avro import AvroCodec
from aop.log.chain_event import RoutedEvent
from aop.log.slot_batch import SlotBatchDecoder, SlotBatchEncoder
codec = AvroCodec()
event = RoutedEvent(1, 42, "sig", 0, "ChannelStaked", 7, "P", b"\\x01\\x02", {"k": "v"})
record = SlotBatchEncoder(codec, topic="t").encode(1, 40, 44, [event], "c")
decoded = SlotBatchDecoder(codec).decode(record)
print(decoded["last_slot"], decoded["events"][0]["id"], codec.decode(record)[0])
"""
    assert run(installed, "python", "-c", script).split() == ["44", "sig:0", "SlotBatch"]


@pytest.fixture
def schema(database_url: str) -> Iterator[str]:
    name = f"t_wheel_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_installed_aop_migrates_and_serves(
    installed: Path, database_url: str, schema: str
) -> None:
    env = {"AOP_DATABASE_URL": database_url, "AOP_DATABASE_SCHEMA": schema}
    run(installed, "aop", "db", "upgrade", env=env)
    port = _free_port()
    api = subprocess.Popen(
        [str(installed / "aop"), "api"],
        cwd=installed,
        env={"PATH": os.environ["PATH"], **env, "AOP_API_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                reply = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if reply.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert api.poll() is None, api.stderr.read().decode() if api.stderr else ""
            assert time.monotonic() < deadline, "aop api did not become ready"
            time.sleep(0.3)
        assert reply.json() == {"status": "ready"}
    finally:
        api.terminate()
        api.wait(30)
