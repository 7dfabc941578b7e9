"""The attention-oracle program, re-implemented in Python rule for rule, in two versions.

`execute(ctx, program)` is the program's entrypoint: Anchor dispatches on the 8-byte
instruction discriminator, logs `Instruction: <Name>`, validates accounts and runs the
handler. A discriminator the version does not route fails with Anchor's
InstructionFallbackNotFound (101), as the real program.

`v0.2.2` (the default): cumulative-v2 (initialize_channel_cumulative, publish_cumulative_root,
claim_cumulative), ring-v0 (set_channel_merkle_root, claim_channel_open), channel staking
(stake_channel, unstake_channel, emergency_unstake_channel) and admin (update_publisher,
set_paused, update_channel_creator_fee, admin_recover_root_seq).

`deployed` (the program on mainnet since 2026-04, reference §G): the global roots and claims
(publish_global_root, claim_global, claim_global_sponsored, claim_global_v2,
claim_global_sponsored_v2; `program.global_root`); every v0.2.2 instruction above fails with
101, except the staking ones. **Departure:** the live binary routes no staking instruction
(reference §8, §G5), but the pipeline's stake-time fold needs ChannelStaked/ChannelUnstaked
events as its input, so the simulator keeps its staking instructions routed in this profile:
they are the simulated source of the base yield, not a claim about the live program.
Harvest, vault and treasury admin instructions the live binary routes are not simulated.
"""

from __future__ import annotations

from collections.abc import Callable

from aop.core.anchor import instruction_discriminator
from aop.simchain.config import SimProgram
from aop.simchain.invoke import InvokeContext, jitter
from aop.simchain.program import admin, cumulative, global_root, ring, staking
from aop.simchain.program.anchor import fail

__all__ = ["Handler", "Route", "execute", "routes"]

Handler = Callable[[InvokeContext], None]
#: (snake_case name, Anchor's CamelCase name, handler, base compute units).
Route = tuple[str, str, Handler, int]

_STAKING: dict[str, tuple[Handler, int]] = {
    "stake_channel": (staking.stake_channel, 24_000),
    "unstake_channel": (staking.unstake_channel, 17_000),
    "emergency_unstake_channel": (staking.emergency_unstake_channel, 18_500),
}

#: snake_case name -> (handler, base compute units), per program version.
_HANDLERS: dict[SimProgram, dict[str, tuple[Handler, int]]] = {
    "v0.2.2": {
        "initialize_channel_cumulative": (cumulative.initialize_channel_cumulative, 14_000),
        "publish_cumulative_root": (cumulative.publish_cumulative_root, 9_800),
        "claim_cumulative": (cumulative.claim_cumulative, 31_000),
        "set_channel_merkle_root": (ring.set_channel_merkle_root, 12_500),
        "claim_channel_open": (ring.claim_channel_open, 28_000),
        **_STAKING,
        "update_publisher": (admin.update_publisher, 6_200),
        "set_paused": (admin.set_paused, 5_900),
        "update_channel_creator_fee": (admin.update_channel_creator_fee, 8_100),
        "admin_recover_root_seq": (admin.admin_recover_root_seq, 8_300),
    },
    "deployed": {
        "publish_global_root": (global_root.publish_global_root, 9_500),
        "claim_global": (global_root.claim_global, 29_000),
        "claim_global_sponsored": (global_root.claim_global_sponsored, 30_500),
        "claim_global_v2": (global_root.claim_global_v2, 29_500),
        "claim_global_sponsored_v2": (global_root.claim_global_sponsored_v2, 31_000),
        **_STAKING,  # the departure stated in the module docstring
    },
}

_ROUTES: dict[SimProgram, dict[bytes, Route]] = {
    program: {
        instruction_discriminator(name): (
            name,
            "".join(part.capitalize() for part in name.split("_")),
            handler,
            units,
        )
        for name, (handler, units) in handlers.items()
    }
    for program, handlers in _HANDLERS.items()
}


def routes(program: SimProgram) -> dict[bytes, Route]:
    """The instructions `program` routes: discriminator -> route (a copy)."""
    return dict(_ROUTES[program])


def execute(ctx: InvokeContext, program: SimProgram = "v0.2.2") -> None:
    """Run one instruction of the program version `program`.

    Raises:
        InstructionFailedError: the instruction failed (its error and log lines are written).
    """
    entry = _ROUTES[program].get(bytes(ctx.data[:8]))
    if entry is None:
        fail(ctx, "InstructionFallbackNotFound")
    _, camel, handler, units = entry
    ctx.log(f"Instruction: {camel}")
    ctx.consume(units + jitter(ctx.data, 1_500))
    handler(ctx)
