"""What a service's memory may rightly grow by with the wallets, on top of a slope limit.

The simulated program allows one stake per wallet and channel, so every ChannelStaked can add
a wallet for good (its cumulative total is a leaf of every later root): state that follows
the wallet count, not the clock (tests/soak/test_soak.py's docstring). The soak and the day
run both judge a service's RSS slope against its limit plus BYTES_PER_STAKE x stakes/min.
"""

from __future__ import annotations

__all__ = ["BYTES_PER_STAKE", "STAKED"]

#: bytes per ChannelStaked allowed on top of the limit, for what rightly grows with the
#: wallets (module docstring); measured per stake (10-minute run / 5-minute run): fold
#: 1078 / 1043, projector 206 / 214, listener 129 / 92, api 77 / 147; combiner 580 (a later
#: 10-minute run, the first with the combiner judged).
BYTES_PER_STAKE = {
    # its state: a wallet entry for good and an open position until unstaked, decoded and
    # marshalled in its `memory://` table
    "fold": 1536,
    # every wallet's parts of the last global root (base, bonus) and each cumulative channel
    # source's totals per wallet, the inputs of the next one: the fold's order of state
    # (measured 580 B per stake, 2026-12-07 soak, where the fold read 584)
    "combiner": 1536,
    # one root at a time, decoded, hashed and written: its working set follows the largest
    # root (the hottest channel gets ~45% of the stakes; ~1 KiB per leaf while in hand)
    "projector": 512,
    # the decoder's base58 text of new wallet and position-mint keys (cache of 200k keys)
    "listener": 256,
    # the upper tree levels of its last AOP_API_CACHE_ROOTS roots (~64 bytes a leaf each,
    # up to the AOP_API_CACHE_LEVEL_NODES cut): they grow with the trees
    "api": 256,
}
STAKED = 'aop_listener_events_total{event="ChannelStaked"}'
