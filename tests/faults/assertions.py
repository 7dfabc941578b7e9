"""The exact outcome every scenario must show, with the figures in the failure message."""

from __future__ import annotations

from dataclasses import asdict

from tests.faults.figures import ScenarioFigures

__all__ = ["assert_no_loss_and_roots_match"]


def assert_no_loss_and_roots_match(figures: ScenarioFigures, *, min_roots: int) -> None:
    """Every emitted event id is on the log exactly once, nothing else is; every root the
    log produces is in Postgres and equal to the replay; at least `min_roots` compared."""
    seen = (
        figures.lost,
        figures.duplicated,
        figures.foreign,
        figures.on_log,
        figures.roots_mismatched,
        figures.roots_unprojected,
    )
    expected = (0, 0, 0, figures.emitted, 0, 0)
    assert seen == expected, (
        f"(lost, duplicated, foreign, on_log, mismatched, unprojected) {asdict(figures)}"
    )
    assert figures.emitted > 0, asdict(figures)
    assert figures.roots_checked >= min_roots, asdict(figures)
