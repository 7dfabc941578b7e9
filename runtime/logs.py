"""JSON-lines logging, configured once by the `aop` entry point.

Every line is also scrubbed of the secrets URLs carry, whoever logged them (our start lines
name the RPC URLs; websockets' DEBUG handshake line holds the request path and query): a
user-info password and the value of every query parameter (RPC providers' `?api-key=`) become
`***`. Text that leaves by other ways (a settings error, a report) goes through
`aop.runtime.settings.redact_url`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
#: `://user:password@` and `?name=value` / `&name=value` (value up to a separator or quote).
_URL_PASSWORD = re.compile(r"(://[^/\s:@\"']+:)[^@\s\"']+@")
_QUERY_VALUE = re.compile(r"([?&][\w.~%-]+=)[^&#\s\"'\\]+")


def scrub_secrets(text: str) -> str:
    """`text` with URL passwords and query values replaced by `***`."""
    return _QUERY_VALUE.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return scrub_secrets(json.dumps(entry, default=str))


def configure_logging(level: str = "INFO") -> None:
    """Send JSON lines to stderr at `level`; does nothing if the root logger has handlers."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
