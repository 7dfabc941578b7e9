"""The parallel run's alerts (AopLegacyParity*, infra/prometheus/alerts.yml) each fire from a
standing start in a promtool unit test (infra/prometheus/alerts.test.yml), and the cases
pass: their input series begin as `aop parity --legacy-dsn-file` exposes them (every
channel's counters at 0 from the start), then the condition arrives.

Only the AopLegacyParity* alerts have cases on this branch; where every alert has one,
tests/unit/test_alert_rules.py checks them all and this file goes."""

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
PREFIX = "AopLegacyParity"


def _legacy_alerts() -> list[str]:
    document = yaml.safe_load(ALERTS.read_text())
    names = [rule["alert"] for group in document["groups"] for rule in group["rules"]]
    return [name for name in names if name.startswith(PREFIX)]


def test_every_legacy_parity_alert_has_a_case_that_sees_it_fire() -> None:
    document: dict[str, Any] = yaml.safe_load(TESTS.read_text())
    firing = {
        case["alertname"]
        for test in document["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert _legacy_alerts() == [
        "AopLegacyParityMismatch",
        "AopLegacyParityMissing",
        "AopLegacyParityStalled",
    ]
    assert sorted(firing) == _legacy_alerts()


def test_promtool_unit_tests_of_the_legacy_parity_alerts_pass(tmp_path: Path) -> None:
    """`promtool test rules` over the rules as written (annotations left out: promtool
    compares them whole, and their text is checked by test_observability)."""
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
