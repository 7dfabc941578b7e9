"""Channel names and their 32-byte subject id, exactly as the program derives them."""

from __future__ import annotations

from aop.core.errors import InvalidChannelNameError
from aop.core.keccak import keccak256

__all__ = ["MAX_CHANNEL_NAME_LEN", "subject_id", "validate_channel_name"]

#: the program rejects longer names with `InvalidChannelName` (6049).
MAX_CHANNEL_NAME_LEN = 64


def validate_channel_name(name: str) -> str:
    """Return `name` unchanged if the program accepts it: 1-64 ASCII characters.

    Raises:
        InvalidChannelNameError: empty, longer than 64, not ASCII, or not a str.
    """
    if not isinstance(name, str):
        raise InvalidChannelNameError(f"channel name must be a str (got {name!r})")
    if not 1 <= len(name) <= MAX_CHANNEL_NAME_LEN or not name.isascii():
        raise InvalidChannelNameError(
            f"channel name must be 1-{MAX_CHANNEL_NAME_LEN} ASCII characters "
            f"(got {name!r}, {len(name)} characters)"
        )
    return name


def subject_id(channel: str) -> bytes:
    """keccak256(b"channel:" || ascii_lowercase(channel)): the channel's 32-byte subject.

    Only A-Z are lowered (Rust `to_ascii_lowercase`), so `"YOUTUBE_LOFI"` and `"youtube_lofi"`
    name the same channel. v0.2.1-clean calls the same value `streamer_key`.

    Raises:
        InvalidChannelNameError: see `validate_channel_name`.
    """
    validate_channel_name(channel)
    return keccak256(b"channel:", channel.encode("ascii").lower())
