"""The publisher keypair file: refused unless private and well-formed; secret never shown."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
from solders.keypair import Keypair

from aop.settlement.errors import PublisherKeypairError
from aop.settlement.keypair import load_publisher_keypair, write_keypair

SECRET = Keypair.from_seed(bytes(range(32)))


def write(path: Path, content: str, mode: int = 0o600) -> Path:
    path.write_text(content)
    path.chmod(mode)
    return path


def test_private_solana_cli_file_loads_the_keypair(tmp_path: Path) -> None:
    path = write(tmp_path / "k.json", json.dumps(list(bytes(SECRET))))
    assert load_publisher_keypair(path).pubkey() == SECRET.pubkey()


def test_unset_variable_is_refused() -> None:
    with pytest.raises(PublisherKeypairError, match=r"^AOP_PUBLISHER_KEYPAIR is not set; "):
        load_publisher_keypair(None)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(
        PublisherKeypairError,
        match=f"^AOP_PUBLISHER_KEYPAIR: file {re.escape(str(path))} does not exist$",
    ):
        load_publisher_keypair(path)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_group_or_world_readable_file_is_refused(tmp_path: Path, mode: int) -> None:
    path = write(tmp_path / "k.json", json.dumps(list(bytes(SECRET))), mode)
    with pytest.raises(PublisherKeypairError) as caught:
        load_publisher_keypair(path)
    assert str(caught.value) == (
        f"AOP_PUBLISHER_KEYPAIR: file {path} must not be accessible to group or others "
        f"(mode {mode:#o}); operator action: chmod 600 {path}"
    )


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[1, 2, 3]",
        json.dumps([*range(63), 256]),
        json.dumps({"secret": list(bytes(SECRET))}),
        json.dumps([True] * 64),
    ],
)
def test_malformed_content_is_refused_without_echoing_it(tmp_path: Path, content: str) -> None:
    path = write(tmp_path / "k.json", content)
    with pytest.raises(PublisherKeypairError) as caught:
        load_publisher_keypair(path)
    assert str(caught.value) == (
        f"AOP_PUBLISHER_KEYPAIR: file {path} must hold a JSON list of 64 integers 0-255 "
        "(the Solana CLI keypair format)"
    )


def test_mismatched_public_half_is_refused_without_echoing_the_secret(tmp_path: Path) -> None:
    raw = list(bytes(SECRET))
    raw[40] ^= 1
    path = write(tmp_path / "k.json", json.dumps(raw))
    with pytest.raises(PublisherKeypairError) as caught:
        load_publisher_keypair(path)
    message = str(caught.value)
    assert message == (
        f"AOP_PUBLISHER_KEYPAIR: file {path} does not hold a valid ed25519 keypair (the public "
        "half must match the secret half)"
    )
    assert str(raw[0]) + ", " + str(raw[1]) not in message


def test_directory_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "dir"
    directory.mkdir(mode=0o700)
    with pytest.raises(PublisherKeypairError, match=r"must be a regular file$"):
        load_publisher_keypair(directory)


def test_written_keypair_is_private_from_creation_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "publisher.json"
    old_umask = os.umask(0)  # the widest umask: the mode must still be 600
    try:
        write_keypair(path, SECRET)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_publisher_keypair(path).pubkey() == SECRET.pubkey()
    with pytest.raises(FileExistsError):
        write_keypair(path, Keypair())
    assert load_publisher_keypair(path).pubkey() == SECRET.pubkey()
