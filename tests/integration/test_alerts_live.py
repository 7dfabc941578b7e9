"""AopCrashLoop fires on a service's FIRST crash loop, with a real Prometheus scraping a real
`aop run` (the promtool cases in infra/prometheus/alerts.test.yml cover every alert; this is
the live one). The child is `aop settle` without a publisher keypair: it exits 2 at once, so
it crash-loops within ~20 s of the supervisor's start."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import ROOT
from tests.live_pipeline import AOP, free_ports, fresh_schema

ALERTS = ROOT / "infra" / "prometheus" / "alerts.yml"
FIRE_TIMEOUT_S = 120.0


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Any]:
    """Starts Debian's prometheus on a free port, scraping the given targets every second."""
    started: list[subprocess.Popen[bytes]] = []

    def start(targets: dict[str, str]) -> str:
        binary = shutil.which("prometheus")
        if binary is None:
            if os.environ.get("CI"):
                pytest.fail("prometheus is missing: .ci/run installs Debian's prometheus package")
            pytest.skip("prometheus not installed (apt-get install prometheus)")
        (port,) = free_ports(1)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]}
                for job, target in targets.items()
            ],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        log = (tmp_path / "prometheus.log").open("wb")
        started.append(
            subprocess.Popen(
                [
                    binary,
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        return f"http://127.0.0.1:{port}"

    yield start
    for process in started:
        process.terminate()
        process.wait(30)


def _firing(prometheus: str, name: str) -> list[dict[str, Any]]:
    try:
        reply = httpx.get(f"{prometheus}/api/v1/alerts", timeout=5)
    except httpx.HTTPError:
        return []
    alerts = reply.json()["data"]["alerts"] if reply.status_code == 200 else []
    return [a for a in alerts if a["labels"]["alertname"] == name and a["state"] == "firing"]


def test_crash_loop_alert_fires_on_the_first_crash_loop_of_aop_run(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, prometheus_factory: Any
) -> None:
    metrics_port, api_port = free_ports(2)
    with fresh_schema(database_url) as schema:
        env = {
            **os.environ,
            "AOP_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "AOP_DATABASE_URL": database_url,
            "AOP_DATABASE_SCHEMA": schema,
            "AOP_TOPIC_PREFIX": topic_prefix,
            "AOP_CHAIN_PARTITIONS": "2",
            "AOP_METRICS_PORT": str(metrics_port),
            "AOP_API_PORT": str(api_port),
            "AOP_LOG_LEVEL": "WARNING",
        }
        env.pop("AOP_PUBLISHER_KEYPAIR", None)
        prometheus = prometheus_factory({"aop-supervisor": f"127.0.0.1:{metrics_port}"})
        run = subprocess.Popen(
            [*AOP, "run", "--services", "settlement"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + FIRE_TIMEOUT_S
            firing: list[dict[str, Any]] = []
            while not firing and time.monotonic() < deadline and run.poll() is None:
                time.sleep(1)
                firing = _firing(prometheus, "AopCrashLoop")
        finally:
            run.terminate()
            _out, err = run.communicate(timeout=60)
    assert firing, f"AopCrashLoop did not fire in {FIRE_TIMEOUT_S:.0f} s: {err.decode()[-2000:]}"
    (alert,) = firing
    assert (alert["labels"]["service"], alert["labels"]["severity"]) == ("settlement", "critical")
    assert b"crash-looping" in err
    assert float(alert["value"]) >= 1
