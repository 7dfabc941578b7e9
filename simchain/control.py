"""`sim_*` JSON-RPC methods: control and inspection of the simulator from another process.

Params may be a JSON object (by name) or a one-element array holding that object. These
methods are never subject to injected faults.

* sim_status: the program version, tip/confirmed/finalized slots, the first available slot
  (the ledger keeps a window: `SimConfig.retained_slots`), counts, faults, URLs.
* sim_emittedEventIds {offset=0, limit=1000 (<= 10000)}: {total, offset, next,
  finalizedSlot, events: [{id, slot, name}]}, the finalized record in chain order.
* sim_truncatedTransactions: [{signature, slot, hidden_events}].
* sim_setFaults {any `Faults` knob; clear=true first turns all off}: the faults and counters.
* sim_dropConnections: {dropped: n}.
* sim_setRate {rate (events/s)}: {rate}.
* sim_setMultiEventRatio {ratio (0..1)}: {multi_event_ratio}; the share of staking
  transactions carrying several events (1: most events cost a share of a transaction).
* sim_rotateChannels {by=1}: {channel_shift}; the hot spot moves `by` channels on
  (`Workload.rotate_channels`).
* sim_pause / sim_resume (the workload): {enabled}. A pause seals the slot being filled, so
  every workload transaction is in a slot <= the tip it reports.
* sim_advance {slots=1}: {tip}; produces slots now (also while the timer runs).
* sim_injectTruncated {count=1}: {pending}.
* sim_setupProtocol {admin, publisher, mint (base58), paused=false}: {protocol_state}.
* sim_setupChannel {name, creator_wallet, creator_fee_bps=0, latest_root_seq=0, mint}:
  {channel_config}.
* sim_setupGlobalRoot {latest_root_seq, mint}: the mint's GlobalRootConfig, its ring holding
  the last 4 root_seqs (made-up roots): {global_root}.
* sim_keys: the simulator's admin, publisher and faucet public keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from solders.pubkey import Pubkey

from aop.simchain.chain import SimChain
from aop.simchain.errors import ChainRequestError, RpcError
from aop.simchain.faults import Faults
from aop.simchain.rpc import rpc_error

__all__ = ["ControlRpc", "ControlledServer"]


class ControlledServer(Protocol):
    """What the `sim_*` methods drive: `SimChainServer`, which serves them, is one (an
    interface here, so this module does not import the server's)."""

    chain: SimChain
    faults: Faults

    def status(self) -> dict[str, Any]: ...

    def drop_connections(self) -> int: ...

    def advance(self, slots: int = 1) -> None: ...


def _named(params: Any) -> dict[str, Any]:
    if isinstance(params, dict):
        return params
    if isinstance(params, list) and not params:
        return {}
    if isinstance(params, list) and len(params) == 1 and isinstance(params[0], dict):
        return params[0]
    raise RpcError(-32602, "Invalid params: sim_* methods take one object of named parameters")


def _key(value: Any, name: str) -> Pubkey | None:
    if value is None:
        return None
    try:
        return Pubkey.from_string(value)
    except (ValueError, TypeError):
        raise RpcError(
            -32602, f"Invalid params: {name} must be a base58 public key (got {value!r})"
        ) from None


class ControlRpc:
    """The `sim_*` methods of one running server."""

    def __init__(self, server: ControlledServer) -> None:
        self.server = server
        self.methods: dict[str, Callable[[dict[str, Any]], Any]] = {
            "sim_status": lambda _: server.status(),
            "sim_emittedEventIds": self.emitted_event_ids,
            "sim_truncatedTransactions": lambda _: server.chain.truncated_transactions(),
            "sim_setFaults": self.set_faults,
            "sim_dropConnections": lambda _: {"dropped": server.drop_connections()},
            "sim_setRate": self.set_rate,
            "sim_setMultiEventRatio": self.set_multi_event_ratio,
            "sim_rotateChannels": self.rotate_channels,
            "sim_pause": lambda _: self._workload(False),
            "sim_resume": lambda _: self._workload(True),
            "sim_advance": self.advance,
            "sim_injectTruncated": self.inject_truncated,
            "sim_setupProtocol": self.setup_protocol,
            "sim_setupChannel": self.setup_channel,
            "sim_setupGlobalRoot": self.setup_global_root,
            "sim_keys": lambda _: {
                "admin": str(server.chain.keys.admin.pubkey()),
                "publisher": str(server.chain.keys.publisher.pubkey()),
                "faucet": str(server.chain.keys.faucet.pubkey()),
            },
        }

    def handles(self, method: str) -> bool:
        return method in self.methods

    def call(self, method: str, params: Any) -> Any:
        try:
            return self.methods[method](_named(params))
        except ChainRequestError as exc:
            raise rpc_error(exc) from exc
        except (ValueError, TypeError) as exc:
            raise RpcError(-32602, f"Invalid params: {exc}") from exc

    def emitted_event_ids(self, params: dict[str, Any]) -> dict[str, Any]:
        offset = int(params.get("offset", 0))
        limit = int(params.get("limit", 1000))
        if offset < 0 or not 1 <= limit <= 10_000:
            raise RpcError(
                -32602,
                "Invalid params: offset must be >= 0 and limit in 1..10000 "
                f"(got {offset}, {limit})",
            )
        record = self.server.chain.record
        total = len(record)
        page = record.page(offset, limit)
        end = offset + len(page)
        return {
            "total": total,
            "offset": offset,
            "next": end if end < total else None,
            "finalizedSlot": self.server.chain.finalized_slot,
            "events": [{"id": e.id, "slot": e.slot, "name": e.name} for e in page],
        }

    def set_faults(self, params: dict[str, Any]) -> dict[str, Any]:
        params = dict(params)
        if params.pop("clear", False):
            self.server.faults.clear()
        self.server.faults.update(**params)
        return self.server.faults.to_json()

    def set_rate(self, params: dict[str, Any]) -> dict[str, Any]:
        self.server.chain.workload.set_rate(float(params["rate"]))
        return {"rate": self.server.chain.workload.rate}

    def set_multi_event_ratio(self, params: dict[str, Any]) -> dict[str, Any]:
        self.server.chain.workload.set_multi_event_ratio(float(params["ratio"]))
        return {"multi_event_ratio": self.server.chain.workload.multi_event_ratio}

    def rotate_channels(self, params: dict[str, Any]) -> dict[str, Any]:
        self.server.chain.workload.rotate_channels(int(params.get("by", 1)))
        return {"channel_shift": self.server.chain.workload.channel_shift}

    def _workload(self, enabled: bool) -> dict[str, Any]:
        chain = self.server.chain
        chain.workload.enabled = enabled
        if not enabled and chain.ledger.pending:
            chain.seal_slot()
        return {"enabled": enabled}

    def advance(self, params: dict[str, Any]) -> dict[str, Any]:
        slots = int(params.get("slots", 1))
        if not 0 <= slots <= 10_000:
            raise RpcError(-32602, f"Invalid params: slots must be in 0..10000 (got {slots})")
        self.server.advance(slots)
        return {"tip": self.server.chain.tip}

    def inject_truncated(self, params: dict[str, Any]) -> dict[str, Any]:
        count = int(params.get("count", 1))
        self.server.chain.workload.inject_truncated(count)
        return {"pending": count}

    def setup_protocol(self, params: dict[str, Any]) -> dict[str, Any]:
        address = self.server.chain.setup_protocol(
            admin=_key(params.get("admin"), "admin"),
            publisher=_key(params.get("publisher"), "publisher"),
            mint=_key(params.get("mint"), "mint"),
            paused=bool(params.get("paused", False)),
        )
        return {"protocol_state": str(address)}

    def setup_channel(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        if not isinstance(name, str):
            raise RpcError(-32602, "Invalid params: name (the channel name) is required")
        address = self.server.chain.setup_channel(
            name,
            creator_wallet=_key(params.get("creator_wallet"), "creator_wallet"),
            creator_fee_bps=int(params.get("creator_fee_bps", 0)),
            latest_root_seq=int(params.get("latest_root_seq", 0)),
            mint=_key(params.get("mint"), "mint"),
        )
        return {"channel_config": str(address)}

    def setup_global_root(self, params: dict[str, Any]) -> dict[str, Any]:
        address = self.server.chain.setup_global_root(
            latest_root_seq=int(params.get("latest_root_seq", 0)),
            mint=_key(params.get("mint"), "mint"),
        )
        return {"global_root": str(address)}
