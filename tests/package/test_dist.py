"""The distributions as a package index sees them: metadata, `twine check`, contents, and the
wheel built from the sdist equal to the one built from the source tree."""

from __future__ import annotations

import email
import hashlib
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from pkgtools import ROOT, Dists, built_dists

import sacsock_actors
from sacsock_actors.demo import STATIC_DIR

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    return built_dists(tmp_path_factory)


def extras_in_pyproject() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])


def contents(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as z:
        return {i.filename: hashlib.sha256(z.read(i)).hexdigest() for i in z.infolist()}


def metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(z.read(name))


def test_wheel_from_sdist_equals_the_direct_wheel(dists: Dists):
    assert dists.wheel.name == dists.direct_wheel.name
    a, b = contents(dists.wheel), contents(dists.direct_wheel)
    assert sorted(set(a) ^ set(b)) == [], "files in one wheel only"
    assert [n for n in a if a[n] != b[n]] == [], "files that differ"


def test_twine_check_passes_strict(dists: Dists):
    proc = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dists.sdist), str(dists.wheel)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASSED") == 2, proc.stdout


def test_readme_renders_as_an_index_shows_it(dists: Dists):
    """PyPI renders text/markdown as GitHub-flavoured Markdown (tables included) and sanitises it."""
    from readme_renderer.markdown import render  # needs cmarkgfm: the `test` extra brings it

    html = render(metadata(dists.wheel).get_payload(), variant="GFM")
    assert html is not None
    assert html.count("<table>") >= 2  # options and extras tables render as tables
    assert re.search(r"<h2[^>]*>Install<", html) and html.count("<pre") >= 4  # code blocks


def test_wheel_ships_the_demo_the_client_and_the_typing_marker(dists: Dists):
    names = set(contents(dists.wheel))
    demo = {f"sacsock_actors/demo/static/{p.name}" for p in STATIC_DIR.iterdir()}
    assert demo >= {"sacsock_actors/demo/static/index.html", "sacsock_actors/demo/static/chat.js"}
    needed = demo | {
        "sacsock_actors/demo/app.py", "sacsock_actors/static/sacsock.js", "sacsock_actors/py.typed",
        "sacsock_actors/__main__.py",
    }
    assert needed <= names, sorted(needed - names)
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "examples/"))]
    # every module of the package in the checkout is in the wheel
    sources = {str(p.relative_to(ROOT)) for p in (ROOT / "sacsock_actors").rglob("*.py")}
    assert sources <= names, sorted(sources - names)


def test_sdist_carries_license_readme_and_pyproject(dists: Dists):
    with tarfile.open(dists.sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    assert {"LICENSE", "README.md", "pyproject.toml", "sacsock_actors/demo/static/index.html"} <= names


def test_metadata_an_index_shows(dists: Dists):
    meta = metadata(dists.wheel)
    assert meta["Name"] == "sacsock_actors"
    assert meta["Version"] == sacsock_actors.__version__  # one source: sacsock_actors/_version.py
    assert meta["License-Expression"] == "MIT"
    assert meta["Requires-Python"] == ">=3.10"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert "sacsock demo" in meta.get_payload()  # the README is the long description
    classifiers = meta.get_all("Classifier")
    assert "Typing :: Typed" in classifiers and "Programming Language :: Python :: 3.10" in classifiers
    urls = dict(u.rsplit(", ", 1) for u in meta.get_all("Project-URL"))  # a label may hold ", "
    repo = "https://github.com/sacsock-actors/sacsock_actors"
    assert urls["Homepage"] == urls["Source"] == repo  # the labels an index shows with icons
    assert urls["Documentation"] == f"{repo}/tree/main/docs" and urls["Issues"] == f"{repo}/issues"
    assert urls["Sacrificial-Socket (protocol, Go server)"] == "https://github.com/raz-varren/sacrificial-socket"
    assert urls == dict(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"])
    assert "websocket" in meta["Keywords"]
    extras = set(meta.get_all("Provides-Extra"))
    assert extras == extras_in_pyproject()
    assert meta.get_all("License-File") == ["LICENSE"]


def test_readme_lists_every_extra_with_what_it_enables():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("| extra | what it enables |", 1)[1].split("\n\n", 1)[0]
    table = dict(re.findall(r"^\| `([\w-]+)` \| (.+?) \|$", section, flags=re.M))
    assert set(table) == extras_in_pyproject()
    assert all(len(text) > 10 for text in table.values())
