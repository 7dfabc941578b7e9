"""Outbox -> Solana: publishes each projected root on-chain, at most once, in order.

`aop settle` runs `settlement.settler.Settler`; see its docstring for the protocol.
"""
