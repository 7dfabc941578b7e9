"""Every alert of infra/prometheus/alerts.yml fires from a standing start in a promtool unit
test (infra/prometheus/alerts.test.yml): its input series begin as a service exposes them
(labelled counters at 0 from the start), then the condition arrives."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "infra" / "prometheus" / "alerts.yml"
TESTS = ROOT / "infra" / "prometheus" / "alerts.test.yml"


def _alert_names() -> list[str]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule["alert"] for group in document["groups"] for rule in group["rules"]]


def _firing_cases() -> dict[str, int]:
    """alert name -> how many eval cases expect it firing."""
    document: dict[str, Any] = yaml.safe_load(TESTS.read_text())
    firing: dict[str, int] = {}
    for test in document["tests"]:
        for case in test.get("alert_rule_test", []):
            if case.get("exp_alerts"):
                firing[case["alertname"]] = firing.get(case["alertname"], 0) + 1
    return firing


def test_every_alert_has_a_case_that_sees_it_fire() -> None:
    firing = _firing_cases()
    missing = [name for name in _alert_names() if name not in firing]
    assert not missing, f"no promtool case expects these alerts to fire: {missing}"
    unknown = sorted(set(firing) - set(_alert_names()))
    assert not unknown, f"cases for alerts alerts.yml does not define: {unknown}"


def test_promtool_unit_tests_of_the_alerts_pass(tmp_path: Path) -> None:
    """`promtool test rules` over the rules as written (annotations left out: promtool compares
    them whole, and their text is checked by tests/integration/test_observability.py)."""
    if shutil.which("promtool") is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    document = yaml.safe_load(ALERTS.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(document))
    shutil.copy(TESTS, tmp_path / "alerts.test.yml")
    result = subprocess.run(
        ["promtool", "test", "rules", "alerts.test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
