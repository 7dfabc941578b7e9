"""The packaging's parts agree: every layer folder of pyproject's package-dir is linked in aop/
(a checkout imports what a wheel installs) and copied by the Dockerfile's build stage."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _package_dirs() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dirs: dict[str, str] = project["tool"]["setuptools"]["package-dir"]
    return dirs


def test_every_layer_of_the_wheel_is_linked_in_the_checkout() -> None:
    for package, folder in _package_dirs().items():
        if package == "aop":
            continue
        link = ROOT / "aop" / package.removeprefix("aop.")
        assert link.is_symlink() and link.resolve() == (ROOT / folder).resolve(), package


def test_the_dockerfile_copies_every_layer_folder() -> None:
    copied = {
        line.split()[1]
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and "--from" not in line
    }
    assert set(_package_dirs().values()) <= copied
