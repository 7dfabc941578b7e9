"""Streaming services: the listener (Solana -> log) and the fold (log -> state -> roots)."""
