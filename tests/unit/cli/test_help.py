"""Every `aop` sub-command (and action) prints a description and an epilog naming its exit
codes; the service commands name their AOP_* settings too."""

from __future__ import annotations

import argparse

from aop.cli.entry import build_parser


def _leaf_parsers(
    parser: argparse.ArgumentParser, path: str = "aop"
) -> dict[str, argparse.ArgumentParser]:
    found = {path: parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_leaf_parsers(sub, f"{path} {name}"))
    return found


def test_every_subcommand_has_a_description_and_exit_codes() -> None:
    parsers = _leaf_parsers(build_parser())
    assert {"aop listen", "aop chain status", "aop dlq show", "aop db roles", "aop combine"} <= set(
        parsers
    )
    problems = []
    for path, parser in parsers.items():
        if path == "aop":
            continue
        if not parser.description:
            problems.append(f"{path}: no description")
        if not parser.epilog or "exit codes:" not in parser.epilog:
            problems.append(f"{path}: no exit codes in the epilog")
    assert not problems, "\n".join(problems)


def test_service_commands_name_their_settings() -> None:
    parsers = _leaf_parsers(build_parser())
    for command in ("listen", "fold", "combine", "project", "settle", "api", "run"):
        epilog = parsers[f"aop {command}"].epilog or ""
        assert "settings: " in epilog and "AOP_" in epilog, command
        assert "0  stopped by SIGTERM or SIGINT" in epilog, command
