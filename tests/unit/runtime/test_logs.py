"""Log lines are JSON with the record's extra fields, and carry no secret a URL held."""

from __future__ import annotations

import json
import logging

import pytest

from aop.runtime.logs import JsonFormatter, scrub_secrets


def _line(msg: str, *args: object, **extra: object) -> dict[str, object]:
    record = logging.makeLogRecord(
        {"name": "t", "levelno": 20, "levelname": "INFO", "msg": msg, "args": args, **extra}
    )
    return json.loads(JsonFormatter().format(record))


def test_a_line_is_json_with_message_and_extra_fields() -> None:
    line = _line("hello %s", "world", partitions=4, slot=None)
    assert (line["msg"], line["partitions"], line["slot"], line["logger"]) == (
        "hello world", 4, None, "t"
    )  # fmt: skip


def test_secrets_in_urls_are_masked_wherever_they_are_logged() -> None:
    """websockets' DEBUG handshake line, an `extra` URL, a database URL in a message."""
    line = _line(
        "> GET /ws?api-key=k3y-1&cluster=main HTTP/1.1 to postgresql+psycopg://aop:pw0rd@db/aop",
        rpc_url="https://rpc.example/?api-key=k3y-2",
    )
    text = json.dumps(line)
    assert "k3y-1" not in text and "k3y-2" not in text and "pw0rd" not in text
    assert line["msg"] == (
        "> GET /ws?api-key=***&cluster=*** HTTP/1.1 to postgresql+psycopg://aop:***@db/aop"
    )
    assert line["rpc_url"] == "https://rpc.example/?api-key=***"


@pytest.mark.parametrize(
    "text",
    ["no url a=b here", "x = 2 and y=3", "http://host:8899/ plain", "stake 5 of 10 (50%)"],
)
def test_text_without_url_secrets_is_unchanged(text: str) -> None:
    assert scrub_secrets(text) == text
