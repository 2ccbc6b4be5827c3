"""Helpers of tests/package (not a conftest.py: tests/integration imports its own
``conftest`` by name, which a second conftest module would shadow).

:func:`built_dists` builds the distributions once per session, from a copy of the checkout
(so no stale build/ or egg-info of the working tree can leak into them): an sdist, the
wheel built from that sdist, and a wheel built straight from the source tree."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Dists:
    sdist: Path
    wheel: Path  # built from the sdist, as `python -m build` does by default
    direct_wheel: Path  # built from the source tree (`python -m build --wheel`)


def _source_files() -> list[str]:
    """Files of the checkout: tracked or new, never ignored (a plain copy without git)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, check=True, capture_output=True,
        ).stdout
        return [f for f in out.decode().split("\0") if f and (ROOT / f).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "node_modules", "build", "dist", "__pycache__"}
        return [
            str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
            if p.is_file() and not skip.intersection(p.relative_to(ROOT).parts)
        ]


def _build(src: Path, out: Path, *flags: str) -> None:
    # --no-isolation: the test venv has setuptools (the `test` extra); no download per build.
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), *flags, "."],
        cwd=src, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"python -m build {' '.join(flags)} failed:\n{proc.stdout}\n{proc.stderr}"


_built: list[Dists] = []


def built_dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """The session's distributions; built on the first call."""
    if not _built:
        _built.append(_build_all(tmp_path_factory.mktemp("dists")))
    return _built[0]


def _build_all(base: Path) -> Dists:
    src = base / "src"
    for name in _source_files():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    _build(src, base / "from-sdist")  # sdist, then the wheel from it
    shutil.rmtree(src / "build", ignore_errors=True)
    _build(src, base / "direct", "--wheel")
    (sdist,) = (base / "from-sdist").glob("*.tar.gz")
    (wheel,) = (base / "from-sdist").glob("*.whl")
    (direct,) = (base / "direct").glob("*.whl")
    return Dists(sdist, wheel, direct)
