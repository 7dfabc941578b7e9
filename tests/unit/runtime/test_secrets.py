"""Secret files: refused unless a private, non-empty regular file; the secret never shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aop.runtime.errors import SettingsError
from aop.runtime.secrets import Secret, read_secret_file

VAR = "AOP_KAFKA_SASL_PASSWORD_FILE"


def write(path: Path, content: str, mode: int = 0o600) -> Path:
    path.write_text(content)
    path.chmod(mode)
    return path


def test_first_line_of_a_private_file_is_the_secret(tmp_path: Path) -> None:
    secret = read_secret_file(write(tmp_path / "pw", "s3cr3t pw\nignored\n"), VAR)
    assert secret.reveal() == "s3cr3t pw"


def test_secret_prints_masked_everywhere() -> None:
    secret = Secret("s3cr3t")
    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r}", repr([secret])]
    assert shown == ["Secret(***)", "***", "***", "Secret(***)", "[Secret(***)]"]


def test_unset_variable_is_refused() -> None:
    with pytest.raises(SettingsError, match=f"^{VAR} is not set; operator action: "):
        read_secret_file(None, VAR)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nope"
    with pytest.raises(SettingsError, match=f"^{VAR}: file {re.escape(str(path))} does not exist$"):
        read_secret_file(path, VAR)


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"must be a regular file$"):
        read_secret_file(tmp_path, VAR)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o644])
def test_file_accessible_to_group_or_others_is_refused_without_showing_it(
    tmp_path: Path, mode: int
) -> None:
    path = write(tmp_path / "pw", "s3cr3t", mode)
    with pytest.raises(SettingsError) as caught:
        read_secret_file(path, VAR)
    assert str(caught.value) == (
        f"{VAR}: file {path} must not be accessible to group or others (mode {mode:#o}); "
        f"operator action: chmod 600 {path}"
    )


@pytest.mark.parametrize("content", ["", "\n", "\nsecond line"])
def test_empty_first_line_is_refused(tmp_path: Path, content: str) -> None:
    with pytest.raises(SettingsError, match=r"is empty \(the secret is its first line\)$"):
        read_secret_file(write(tmp_path / "pw", content), VAR)
