"""Attention signals and their policy: pure rules, no I/O (see `core.attention.signals`)."""
