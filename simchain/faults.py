"""Fault injection: what the RPC and websocket layers do wrong on purpose, and how often.

Faults never touch the chain itself (no event is lost on-chain); they only degrade how a
client sees it, like a flaky RPC provider: dropped or duplicated notifications, slow or
failing HTTP answers, refused or cut websocket connections. Control methods (`sim_*`) are
exempt. Decisions draw from their own seeded RNG, so a run with the same seed and the same
request sequence injects the same faults.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

__all__ = ["FaultMode", "Faults"]

FaultMode = Literal["jsonrpc", "http503", "mixed"]
_MODES = ("jsonrpc", "http503", "mixed")


@dataclass
class Faults:
    """The current fault settings (all off by default) and counters of injected faults.

    Attributes:
        drop_notification_p: probability that a websocket notification is not sent.
        duplicate_notification_p: probability that a notification is sent twice.
        notification_delay_ms: extra delay before each notification.
        delay_ms: extra delay before each HTTP JSON-RPC answer.
        rpc_error_p: probability that an HTTP request fails instead of being answered.
        rpc_error_mode: "jsonrpc" answers -32005 (node behind) for every request of the body,
            "http503" answers HTTP 503, "mixed" picks one of the two each time.
        refuse_websockets: new websocket handshakes are answered HTTP 503.
    """

    drop_notification_p: float = 0.0
    duplicate_notification_p: float = 0.0
    notification_delay_ms: float = 0.0
    delay_ms: float = 0.0
    rpc_error_p: float = 0.0
    rpc_error_mode: FaultMode = "jsonrpc"
    refuse_websockets: bool = False
    seed: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"faults:{self.seed}")
        self.update()

    def update(self, **changes: Any) -> None:
        """Set some fault knobs (by attribute name), validating each; all or nothing.

        Raises:
            ValueError: an unknown name, a probability outside 0..1, a negative delay, or an
                unknown rpc_error_mode (the message names it and what it must be).
        """
        known = {f.name for f in fields(self)} - {"counts", "seed"}
        values = {name: getattr(self, name) for name in known}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault {name!r} (known: {', '.join(sorted(known))})")
            values[name] = value
        for name in ("drop_notification_p", "duplicate_notification_p", "rpc_error_p"):
            value = values[name]
            if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in 0..1 (got {value!r})")
        for name in ("delay_ms", "notification_delay_ms"):
            value = values[name]
            if not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a number of milliseconds >= 0 (got {value!r})")
        if values["rpc_error_mode"] not in _MODES:
            raise ValueError(
                f"rpc_error_mode must be one of {', '.join(_MODES)} "
                f"(got {values['rpc_error_mode']!r})"
            )
        values["refuse_websockets"] = bool(values["refuse_websockets"])
        for name, value in values.items():
            setattr(self, name, value)

    def clear(self) -> None:
        """Turn every fault off (counters are kept)."""
        self.update(
            drop_notification_p=0.0,
            duplicate_notification_p=0.0,
            notification_delay_ms=0.0,
            delay_ms=0.0,
            rpc_error_p=0.0,
            rpc_error_mode="jsonrpc",
            refuse_websockets=False,
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("seed")
        return data

    def count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    # -- decisions -------------------------------------------------------------------------
    def notification_copies(self) -> int:
        """How many times to send the next notification: 0 (dropped), 1, or 2 (duplicated)."""
        if self.drop_notification_p and self._rng.random() < self.drop_notification_p:
            self.count("notifications_dropped")
            return 0
        if self.duplicate_notification_p and self._rng.random() < self.duplicate_notification_p:
            self.count("notifications_duplicated")
            return 2
        return 1

    def rpc_error(self) -> Literal["jsonrpc", "http503"] | None:
        """Whether (and how) to fail the next HTTP request."""
        if not self.rpc_error_p or self._rng.random() >= self.rpc_error_p:
            return None
        mode: Literal["jsonrpc", "http503"]
        if self.rpc_error_mode == "mixed":
            mode = "jsonrpc" if self._rng.random() < 0.5 else "http503"
        else:
            mode = self.rpc_error_mode
        self.count(f"rpc_errors_{mode}")
        return mode
