"""What the project installs: its two packages with the files they read at run time, never the
tests. Read from setuptools' own metadata of a copy of the tree (``egg_info``: the same package
discovery and package data that build the wheel, offline and in a second)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def metadata(tmp_path_factory) -> Path:
    """The egg-info folder setuptools writes for the files git tracks (or would track)."""
    tree = tmp_path_factory.mktemp("tree")
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
        text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    for name in listed:
        if (REPO / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            (tree / name).write_bytes((REPO / name).read_bytes())
    out = tree / "egg"
    out.mkdir()
    subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "egg_info", "-e",
         str(out)],
        cwd=tree, capture_output=True, check=True,
    )  # fmt: skip
    (info,) = out.glob("*.egg-info")
    return info


def test_only_the_two_packages_are_installed(metadata):
    top_level = set((metadata / "top_level.txt").read_text().split())
    assert top_level == {"wind_pipeline", "connector_api"}
    sources = (metadata / "SOURCES.txt").read_text().splitlines()
    assert not [name for name in sources if name.startswith("wind_pipeline_tests")]


def test_every_file_of_the_packages_ships(metadata):
    """Migrations and any other non-Python file inside the packages go with them."""
    sources = set((metadata / "SOURCES.txt").read_text().splitlines())
    tracked = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "wind_pipeline", "connector_api"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    missing = [name for name in tracked if (REPO / name).is_file() and name not in sources]
    assert missing == []
    assert any(name.startswith("wind_pipeline/etl/migrations/versions/") for name in sources)
