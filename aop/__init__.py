"""Shared plumbing of the Attention Oracle Pipeline: settings, CLI, logging, the log codec.

`core/` is the pure heart; `aop/` holds what every service needs around it (reading settings
once at the entry point, JSON logging, the `aop` command) and must never be imported by `core/`.
"""
