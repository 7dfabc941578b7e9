"""Hostile program logs: the decoders raise only their declared errors, and `TxDecoder` none.

`core.events.decode_event` may raise only `EventDecodeError`, `core.program_logs` only
`ProgramLogError`; `TxDecoder.decode` never raises and accounts for every payload of a
succeeded transaction exactly once, as an event or as a dead letter with a declared reason.
Payloads: random bytes, random bytes after each known discriminator (every length around the
event's size), truncated and garbage base64; lines: random text and frame lines with garbled
depths ("[²]", 5000 digits: once a ValueError that would have stopped the listener).
"""

from __future__ import annotations

import base64

from hypothesis import example, given
from hypothesis import strategies as st

from aop.core.errors import EventDecodeError, ProgramLogError
from aop.core.events import EVENT_TYPES, UnknownEvent, decode_event
from aop.core.program_logs import program_payloads
from aop.streams.listener.decode import TxDecoder
from aop.streams.listener.model import TxLogs
from tests.unit.streams.listener.conftest import PROGRAM, TOKEN, data_line

DECODER = TxDecoder(PROGRAM, 12)
#: the reasons a succeeded, complete transaction's payload may be dead-lettered with.
PAYLOAD_REASONS = {"bad_base64", "undecodable_event"}
KNOWN = sorted(EVENT_TYPES.values(), key=lambda cls: cls.NAME)
DISCRIMINATORS = {cls.DISCRIMINATOR for cls in KNOWN}


@st.composite
def known_discriminator_payloads(draw: st.DrawFn) -> bytes:
    """A known event's discriminator, then random bytes of about (or exactly) its size."""
    cls = draw(st.sampled_from(KNOWN))
    body_size = cls.size() - 8
    size = draw(st.sampled_from([0, 1, body_size - 1, body_size, body_size + 1, body_size * 2]))
    return cls.DISCRIMINATOR + draw(st.binary(min_size=max(size, 0), max_size=max(size, 0)))


payloads = st.binary(max_size=200) | known_discriminator_payloads()

#: what may follow "Program data: ": good base64, cut base64, or text that is not base64.
data_texts = st.one_of(
    payloads.map(lambda p: base64.b64encode(p).decode()),
    payloads.filter(len).map(lambda p: base64.b64encode(p).decode()[:-1]),
    st.text(max_size=40),
)

garbled_depths = st.sampled_from(["[²]", "[" + "9" * 5000 + "]", "[-1]", "[]", "[1", "[0]"])
log_lines = st.one_of(
    data_texts.map(lambda text: "Program data: " + text),
    st.just(f"Program {PROGRAM} invoke [1]"),
    st.just(f"Program {TOKEN} invoke [2]"),
    garbled_depths.map(lambda depth: f"Program {PROGRAM} invoke {depth}"),
    st.just(f"Program {PROGRAM} success"),
    st.just(f"Program {PROGRAM} failed: custom program error: 0x1"),
    st.just("Program log: Instruction: Stake"),
    st.text(max_size=60),
)


@given(payloads)
def test_decode_event_raises_only_event_decode_error(data: bytes) -> None:
    try:
        event = decode_event(data)
    except EventDecodeError:
        return
    assert event.encode() == data
    assert isinstance(event, UnknownEvent) == (data[:8] not in DISCRIMINATORS)


@given(st.lists(log_lines, max_size=12))
def test_program_payloads_raises_only_program_log_error(logs: list[str]) -> None:
    try:
        found, _ = program_payloads(logs, PROGRAM)
    except ProgramLogError:
        return
    assert all(isinstance(payload, bytes) for payload in found)


@example(logs=["Log truncated"])  # found by a random run: one letter for the transaction
@given(st.lists(log_lines, max_size=12))
def test_tx_decoder_never_raises_and_accounts_for_every_payload(logs: list[str]) -> None:
    framed = (f"Program {PROGRAM} invoke [1]", *logs)
    decoded = DECODER.decode(TxLogs("sig", 9, None, None, framed))
    events = {event.event_index for event in decoded.events}
    # a "Log truncated" line (st.text can draw it) is one letter for the whole transaction
    cut = [letter for letter in decoded.dead if letter.reason == "log_truncated"]
    assert [letter.source for letter in cut] == (["sig"] if decoded.truncated else [])
    per_payload = [letter for letter in decoded.dead if letter.reason != "log_truncated"]
    dead = {int(letter.source.rsplit(":", 1)[1]): letter.reason for letter in per_payload}
    assert not events & dead.keys()
    assert set(dead.values()) <= PAYLOAD_REASONS
    assert sorted(events | dead.keys()) == list(range(len(events | dead.keys())))
    assert all(letter.slot == 9 and letter.detail.startswith("slot 9: ") for letter in decoded.dead)


@given(st.lists(payloads, min_size=1, max_size=6))
def test_tx_decoder_keeps_every_decodable_payload_and_dead_letters_the_rest(
    batch: list[bytes],
) -> None:
    """Each payload is an event iff `decode_event` accepts it, else `undecodable_event`."""
    logs = (
        f"Program {PROGRAM} invoke [1]",
        *(data_line(payload) for payload in batch),
        f"Program {PROGRAM} success",
    )
    decoded = DECODER.decode(TxLogs("sig", 9, None, None, logs))
    expected_events, expected_dead = [], []
    for index, payload in enumerate(batch):
        try:
            decode_event(payload)
        except EventDecodeError:
            expected_dead.append(("undecodable_event", f"sig:{index}", payload))
        else:
            expected_events.append((index, payload))
    assert [(e.event_index, e.data) for e in decoded.events] == expected_events
    assert [(d.reason, d.source, d.payload) for d in decoded.dead] == expected_dead


def test_garbled_invoke_depth_pushes_the_frame_instead_of_raising() -> None:
    payload = bytes(8)
    for depth in ("[²]", "[" + "9" * 5000 + "]"):
        logs = (f"Program {PROGRAM} invoke {depth}", data_line(payload))
        decoded = DECODER.decode(TxLogs("sig", 9, None, None, logs))
        assert [(e.name, e.data) for e in decoded.events] == [("UnknownEvent", payload)]
        assert decoded.dead == []


def test_non_ascii_data_line_is_dead_as_bad_base64_and_the_next_payload_kept() -> None:
    """binascii raises a plain ValueError (not binascii.Error) for non-ASCII text."""
    logs = (f"Program {PROGRAM} invoke [1]", "Program data: ÀÀÀÀ", data_line(bytes(8)))
    decoded = DECODER.decode(TxLogs("sig", 9, None, None, logs))
    assert [(d.reason, d.source, d.payload) for d in decoded.dead] == [
        ("bad_base64", "sig:0", "Program data: ÀÀÀÀ".encode())
    ]
    assert [(e.event_index, e.name) for e in decoded.events] == [(1, "UnknownEvent")]
