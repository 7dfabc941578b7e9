"""The soak's figures: collected from the services' /metrics, written as JSON, printed as a
table (the numbers RELIABILITY.md's `## Soak` section quotes)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.soak.memory import MemoryTrend

__all__ = ["counter_increase", "metric_totals", "render_table", "write_json"]


def metric_totals(url: str) -> dict[str, float]:
    """Each sample name of a /metrics page summed over its labels, and over each single
    label value as `name{label="value"}` ({} if the page does not answer)."""
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return {}
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            keys = [sample.name, *(f'{sample.name}{{{k}="{v}"}}' for k, v in sample.labels.items())]
            for key in keys:
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def counter_increase(values: list[float]) -> float:
    """How much a counter rose over successive samples `values`, across restarts of the
    process that counts (a drop is a reset: the counter counts again from 0)."""
    return sum(b - a if b >= a else b for a, b in itertools.pairwise(values))


def write_json(path: Path, result: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=True, default=_plain) + "\n")


def _plain(value: Any) -> Any:
    if isinstance(value, MemoryTrend):
        return {**asdict(value), "growth_mib": value.growth_mib}
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def render_table(result: Mapping[str, Any]) -> str:
    """Memory per process, then the run's throughput, roots, lag and checks."""
    window_min = result["window_s"] / 60
    lines = [
        f"soak {result['date']}: {result['load_s']:.0f} s of load, warm-up "
        f"{result['warmup_s']:.0f} s, measured window {window_min:.1f} min; "
        f"load average {result['loadavg_start']} -> {result['loadavg_end']}",
        "",
        "| process | RSS start MiB | RSS end MiB | growth MiB | slope MiB/min | peak MiB "
        "| limit MiB/min |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in result["memory"].items():
        trend = row["trend"]
        if trend is None:
            lines.append(f"| {name} | - | - | - | - | - | - |")
            continue
        limit = row["limit_mib_per_min"]
        lines.append(
            f"| {name} | {trend.start_mib:.1f} | {trend.end_mib:.1f} | {trend.growth_mib:+.1f} "
            f"| {trend.slope_mib_per_min:+.2f} | {trend.peak_mib:.1f} "
            f"| {'-' if limit is None else f'{limit:.1f}'} |"
        )
    run = result["run"]
    lines += [
        "",
        "| figure | value |",
        "|---|---:|",
        *(f"| {key} | {value} |" for key, value in run.items()),
    ]
    return "\n".join(lines)
