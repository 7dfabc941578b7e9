"""api.ingest.tokens: tokens stored hashed, checked in constant time, never shown."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from aop.api.ingest.tokens import TokenFile, TokenTable, mint_token
from aop.runtime.errors import SettingsError


def _private(path: Path, text: str) -> Path:
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


def test_a_minted_token_is_random_prefixed_and_its_line_holds_its_sha256() -> None:
    one, two = mint_token("irc-1"), mint_token("irc-1")
    token = one.token.reveal()
    assert token.startswith("aopi_") and len(token) == 5 + 43
    assert one.token.reveal() != two.token.reveal()
    assert one.line == f"irc-1 sha256:{hashlib.sha256(token.encode()).hexdigest()}"
    assert token not in repr(one) and token not in str(one.token)


def test_source_names_are_checked() -> None:
    with pytest.raises(ValueError, match=r"a source name must be .* \(got 'Bad Name'\)"):
        mint_token("Bad Name")


def test_the_file_maps_each_token_to_its_source(tmp_path: Path) -> None:
    a, b, a2 = mint_token("a"), mint_token("b.yt"), mint_token("a")
    path = _private(
        tmp_path / "tokens",
        f"# collectors\n{a.line}\n\n{b.line}   # youtube\n{a2.line}\n",
    )
    table = TokenTable.from_file(path)
    assert table.source_of(a.token.reveal()) == "a"
    assert table.source_of(a2.token.reveal()) == "a"  # rotation: two tokens of one source
    assert table.source_of(b.token.reveal()) == "b.yt"
    assert table.source_of("aopi_" + "x" * 43) is None
    assert table.source_of("") is None
    assert len(table) == 3 and table.sources == ("a", "b.yt")
    assert "sha256" not in repr(table) and a.token.reveal() not in repr(table)


def test_a_file_others_can_read_is_refused_naming_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(mint_token("a").line + "\n")
    os.chmod(path, 0o644)
    with pytest.raises(
        SettingsError, match=r"AOP_INGEST_TOKENS_FILE: file .* must not be accessible to group"
    ):
        TokenTable.from_file(path)


def test_a_bad_line_is_refused_by_number_without_its_hash(tmp_path: Path) -> None:
    path = _private(tmp_path / "tokens", f"{mint_token('a').line}\nb sha256:abc\n")
    with pytest.raises(SettingsError, match=r"line 2 \(source 'b'\) must be") as refused:
        TokenTable.from_file(path)
    assert "abc" not in str(refused.value)


def test_an_unset_file_admits_no_one() -> None:
    tokens = TokenFile(None)
    assert len(tokens.table) == 0
    assert tokens.reload_if_changed() is None


def test_a_changed_file_is_reloaded_and_a_refused_change_keeps_the_old_tokens(
    tmp_path: Path,
) -> None:
    a, b = mint_token("a"), mint_token("b")
    path = _private(tmp_path / "tokens", a.line + "\n")
    tokens = TokenFile(path)
    assert tokens.reload_if_changed() is None  # unchanged
    _private(path, f"{a.line}\n{b.line}\n")
    assert tokens.reload_if_changed() is True
    assert tokens.table.source_of(b.token.reveal()) == "b"
    _private(path, "garbage line\n")
    with pytest.raises(SettingsError, match="line 1"):
        tokens.reload_if_changed()
    assert tokens.table.source_of(b.token.reveal()) == "b"  # still in force
