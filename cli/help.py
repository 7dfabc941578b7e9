"""The help every `aop` sub-command prints: a description, then an epilog naming the settings
it reads and its exit codes (`aop COMMAND --help`), so an operator needs no other page."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "EPOCH_SETTINGS",
    "KAFKA_SETTINGS",
    "OPERATOR_ERROR",
    "SERVICE_EXITS",
    "command_epilog",
    "help_options",
]

_WIDTH = 88

#: exit code 2, as `aop.cli.entry` gives it for every `AopError`.
OPERATOR_ERROR = "bad settings (the message names the AOP_* variable) or another operator error"
#: what makes the roots: the fold, the replay, parity and rebuild must see the same values.
EPOCH_SETTINGS = (
    "AOP_CHANNELS",
    "AOP_GENESIS_SLOT",
    "AOP_EPOCH_SLOTS",
    "AOP_EMISSION_DEFAULT",
    "AOP_EMISSIONS",
    "AOP_CLAIM_FORMAT_DEFAULT",
    "AOP_CLAIM_FORMATS",
    "AOP_FIRST_ROOT_SEQ",
)
#: how every client reaches the brokers (aop.log.clients).
KAFKA_SETTINGS = (
    "AOP_KAFKA_BOOTSTRAP",
    "AOP_KAFKA_SECURITY_PROTOCOL",
    "AOP_KAFKA_SASL_MECHANISM",
    "AOP_KAFKA_SASL_USERNAME",
    "AOP_KAFKA_SASL_PASSWORD_FILE",
    "AOP_KAFKA_SSL_CA_FILE",
    "AOP_KAFKA_SSL_CERT_FILE",
    "AOP_KAFKA_SSL_KEY_FILE",
    "AOP_KAFKA_CLIENT_OPTIONS",
    "AOP_TOPIC_PREFIX",
)
#: the exit codes of a long-running service.
SERVICE_EXITS: Mapping[int, str] = {
    0: "stopped by SIGTERM or SIGINT",
    2: OPERATOR_ERROR,
}


def command_epilog(settings: Sequence[str], exits: Mapping[int, str]) -> str:
    """'settings: ...' and one line per exit code, wrapped."""
    lines = []
    if settings:
        lines.append(
            textwrap.fill("settings: " + ", ".join(settings), _WIDTH, subsequent_indent="  ")
        )
    lines.append("exit codes:")
    lines.extend(
        textwrap.fill(f"{code}  {meaning}", _WIDTH, initial_indent="  ", subsequent_indent="     ")
        for code, meaning in sorted(exits.items())
    )
    return "\n".join(lines)


def help_options(
    description: str, *, settings: Sequence[str], exits: Mapping[int, str]
) -> dict[str, Any]:
    """Keyword arguments of `add_parser` for a command: its description (a one-line text is
    wrapped; one with line breaks is kept as written) and its epilog."""
    return {
        "description": description if "\n" in description else textwrap.fill(description, _WIDTH),
        "epilog": command_epilog(settings, exits),
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }
