"""`aop api` as operators run it: a real uvicorn process, JSON logs, graceful SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from aop.projections.db import upgrade
from aop.runtime.settings import load_settings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_aop_api_serves_and_stops_cleanly_on_sigterm(database_url: str, db_schema: str) -> None:
    upgrade(load_settings({"AOP_DATABASE_URL": database_url, "AOP_DATABASE_SCHEMA": db_schema}))
    port = _free_port()
    env = {
        **os.environ,
        "AOP_DATABASE_URL": database_url,
        "AOP_DATABASE_SCHEMA": db_schema,
        "AOP_API_PORT": str(port),
        "AOP_API_ACCESS_LOG": "true",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "aop.cli", "api"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail(f"aop api did not start: {process.communicate()[1][-2000:]}")
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.json() == {"status": "ready"}
        listing = httpx.get(f"http://127.0.0.1:{port}/v1/channels", timeout=5)
        assert listing.json() == {"channels": [], "next_after": None}
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr[-2000:]
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    messages = [r["msg"] for r in records]
    assert "api starting" in messages and "api stopped" in messages
    assert any("GET /v1/channels" in m for m in messages)  # JSON access log line


def test_aop_api_refuses_an_unmigrated_schema(database_url: str, db_schema: str) -> None:
    env = {**os.environ, "AOP_DATABASE_URL": database_url, "AOP_DATABASE_SCHEMA": db_schema}
    result = subprocess.run(
        [sys.executable, "-m", "aop.cli", "api", "--port", str(_free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "operator action: run `aop db upgrade`" in result.stderr
