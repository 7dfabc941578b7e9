"""The attention-oracle program, re-implemented in Python rule for rule.

`execute(ctx)` is the program's entrypoint: Anchor dispatches on the 8-byte instruction
discriminator, logs `Instruction: <Name>`, validates accounts and runs the handler. Unknown
discriminators fail with Anchor's InstructionFallbackNotFound (101), as the real program.

Instructions: cumulative-v2 (initialize_channel_cumulative, publish_cumulative_root,
claim_cumulative), ring-v0 (set_channel_merkle_root, claim_channel_open), channel staking
(stake_channel, unstake_channel, emergency_unstake_channel) and admin (update_publisher,
set_paused, update_channel_creator_fee, admin_recover_root_seq).
"""

from __future__ import annotations

from collections.abc import Callable

from aop.core.anchor import instruction_discriminator
from aop.simchain.invoke import InvokeContext, jitter
from aop.simchain.program import admin, cumulative, ring, staking
from aop.simchain.program.anchor import fail

__all__ = ["INSTRUCTIONS", "execute"]

Handler = Callable[[InvokeContext], None]

#: snake_case name -> (handler, base compute units).
_HANDLERS: dict[str, tuple[Handler, int]] = {
    "initialize_channel_cumulative": (cumulative.initialize_channel_cumulative, 14_000),
    "publish_cumulative_root": (cumulative.publish_cumulative_root, 9_800),
    "claim_cumulative": (cumulative.claim_cumulative, 31_000),
    "set_channel_merkle_root": (ring.set_channel_merkle_root, 12_500),
    "claim_channel_open": (ring.claim_channel_open, 28_000),
    "stake_channel": (staking.stake_channel, 24_000),
    "unstake_channel": (staking.unstake_channel, 17_000),
    "emergency_unstake_channel": (staking.emergency_unstake_channel, 18_500),
    "update_publisher": (admin.update_publisher, 6_200),
    "set_paused": (admin.set_paused, 5_900),
    "update_channel_creator_fee": (admin.update_channel_creator_fee, 8_100),
    "admin_recover_root_seq": (admin.admin_recover_root_seq, 8_300),
}

#: discriminator -> (snake_case name, Anchor's CamelCase name, handler, base units).
INSTRUCTIONS: dict[bytes, tuple[str, str, Handler, int]] = {
    instruction_discriminator(name): (
        name,
        "".join(part.capitalize() for part in name.split("_")),
        handler,
        units,
    )
    for name, (handler, units) in _HANDLERS.items()
}


def execute(ctx: InvokeContext) -> None:
    """Run one instruction of the program.

    Raises:
        InstructionFailedError: the instruction failed (its error and log lines are written).
    """
    entry = INSTRUCTIONS.get(bytes(ctx.data[:8]))
    if entry is None:
        fail(ctx, "InstructionFallbackNotFound")
    _, camel, handler, units = entry
    ctx.log(f"Instruction: {camel}")
    ctx.consume(units + jitter(ctx.data, 1_500))
    handler(ctx)
