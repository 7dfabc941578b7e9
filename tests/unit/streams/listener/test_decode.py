"""TxDecoder: a transaction's logs become routed ChainEvents and dead letters."""

from __future__ import annotations

from solders.pubkey import Pubkey

from aop.streams.listener.decode import TxDecoder
from aop.streams.listener.model import TxLogs
from tests.unit.streams.listener.conftest import (
    PROGRAM,
    claimed,
    data_line,
    paused,
    program_logs,
    staked,
)

SIG = "5h6xBEauJ3PK6SWCZ1PGjBvj8vDdWG3KpwATGy1ARAXFSDwt8GFXM7W5Ncn16wmqokgpiKRLuS83KUxyZyv2sUYv"
CH1 = bytes([1]) * 32  # partition 1 of 4
CH2 = bytes([2]) * 32  # partition 2 of 4


def _tx(logs: list[str] | None, *, err: str | None = None) -> TxLogs:
    return TxLogs(SIG, 1234, 1_700_000_123, err, None if logs is None else tuple(logs))


def test_decode_succeeded_tx_routes_each_event_by_its_channel() -> None:
    """Events get ids sig:n, their channel's partition, raw bytes and text fields."""
    first, second = staked(CH1), claimed(CH2)
    tx = _tx(program_logs([data_line(first.encode()), data_line(second.encode())]))
    out = TxDecoder(PROGRAM, 4).decode(tx)
    assert out.dead == []
    assert out.truncated is False
    assert [(e.id, e.partition, e.name) for e in out.events] == [
        (f"{SIG}:0", 1, "ChannelStaked"),
        (f"{SIG}:1", 2, "CumulativeRewardsClaimed"),
    ]
    assert out.events[0].record == {
        "id": f"{SIG}:0",
        "signature": SIG,
        "slot": 1234,
        "block_time": 1_700_000_123,
        "event_index": 0,
        "program_id": PROGRAM,
        "name": "ChannelStaked",
        "data": first.encode(),
        "fields": {
            "user": str(Pubkey.from_bytes(bytes([1]) * 32)),
            "channel": str(Pubkey.from_bytes(CH1)),
            "amount": "1000",
            "nft_mint": str(Pubkey.from_bytes(bytes([9]) * 32)),
            "lock_duration": "100",
            "boost_bps": "12500",
            "timestamp": "1700000000",
        },
    }
    assert out.events[1].record["fields"]["user_amount"] == "18446744073709551615"


def test_decode_ignores_payloads_of_cpi_frames() -> None:
    """A `Program data:` line inside the Token-2022 CPI is not the program's event."""
    event = staked(CH1)
    tx = _tx(program_logs([data_line(event.encode())], cpi_lines=[data_line(b"x" * 40)]))
    out = TxDecoder(PROGRAM, 4).decode(tx)
    assert [e.id for e in out.events] == [f"{SIG}:0"]
    assert out.dead == []


def test_decode_protocol_event_and_unknown_discriminator_go_to_partition_zero() -> None:
    unknown = bytes.fromhex("0102030405060708") + b"\xff" * 5
    tx = _tx(program_logs([data_line(paused().encode()), data_line(unknown)]))
    out = TxDecoder(PROGRAM, 4).decode(tx)
    assert [(e.id, e.partition, e.name) for e in out.events] == [
        (f"{SIG}:0", 0, "ProtocolPaused"),
        (f"{SIG}:1", 0, "UnknownEvent"),
    ]
    assert out.events[0].record["fields"]["paused"] == "true"
    assert out.events[0].record["fields"]["timestamp"] == "-5"
    assert out.events[1].record["fields"] == {"discriminator": "0102030405060708"}
    assert out.events[1].record["data"] == unknown


def test_decode_bad_base64_line_is_dead_and_the_others_keep_their_index() -> None:
    """The bad line is event index 1; events 0 and 2 still go on the log."""
    lines = [data_line(staked(CH1).encode()), "Program data: !!not-base64!!"]
    logs = program_logs(lines)
    logs.insert(-2, data_line(staked(CH2).encode()))
    out = TxDecoder(PROGRAM, 4).decode(_tx(logs))
    assert [e.id for e in out.events] == [f"{SIG}:0", f"{SIG}:2"]
    assert [(d.reason, d.source, d.payload, d.slot) for d in out.dead] == [
        ("bad_base64", f"{SIG}:1", b"Program data: !!not-base64!!", 1234)
    ]


def test_decode_garbled_known_event_is_dead_as_undecodable() -> None:
    body = staked(CH1).encode()[:-3]
    out = TxDecoder(PROGRAM, 4).decode(_tx(program_logs([data_line(body), data_line(b"abc")])))
    assert out.events == []
    assert [(d.reason, d.source, d.payload) for d in out.dead] == [
        ("undecodable_event", f"{SIG}:0", body),
        ("undecodable_event", f"{SIG}:1", b"abc"),
    ]
    assert "ChannelStaked: payload must be 136 bytes (got 133: short)" in out.dead[0].detail


def test_decode_failed_tx_sends_every_payload_to_the_dlq_and_none_to_the_log() -> None:
    payloads = [staked(CH1).encode(), claimed(CH2).encode()]
    tx = _tx(
        program_logs([data_line(p) for p in payloads]), err="InstructionError(0, Custom(6005))"
    )
    out = TxDecoder(PROGRAM, 4).decode(tx)
    assert out.events == []
    assert [(d.reason, d.source, d.payload) for d in out.dead] == [
        ("failed_transaction", f"{SIG}:0", payloads[0]),
        ("failed_transaction", f"{SIG}:1", payloads[1]),
    ]
    assert "Custom(6005)" in out.dead[0].detail


def test_decode_failed_tx_without_events_gives_one_dead_letter() -> None:
    out = TxDecoder(PROGRAM, 4).decode(_tx(program_logs([]), err="InsufficientFundsForFee"))
    assert [(d.reason, d.source, d.payload) for d in out.dead] == [("failed_transaction", SIG, b"")]


def test_decode_truncated_logs_keep_the_events_before_the_cut_and_report_it() -> None:
    logs = [*program_logs([data_line(staked(CH1).encode())])[:3], "Log truncated"]
    out = TxDecoder(PROGRAM, 4).decode(_tx(logs))
    assert out.truncated is True
    assert [e.id for e in out.events] == [f"{SIG}:0"]
    assert [(d.reason, d.source) for d in out.dead] == [("log_truncated", SIG)]
    assert out.dead[0].payload == "\n".join(logs).encode()


def test_decode_missing_logs_is_dead_as_logs_unavailable() -> None:
    out = TxDecoder(PROGRAM, 4).decode(_tx(None))
    assert out.events == []
    assert [(d.reason, d.source) for d in out.dead] == [("logs_unavailable", SIG)]
