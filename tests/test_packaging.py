"""Packaging metadata: the license is shipped and declared the current way, URLs exist, and
the torch requirement admits the CPU wheel the README pins."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]

tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else None


@pytest.fixture(scope="module")
def project() -> dict:
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_license_file_is_shipped_and_declared_as_spdx(project):
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert project["license"] == "MIT"  # PEP 639 expression, not the deprecated table
    assert "LICENSE" in project["license-files"]
    assert not [c for c in project["classifiers"] if c.startswith("License ::")], (
        "license classifiers are deprecated next to a license expression"
    )


def test_project_urls_exist(project):
    urls = project.get("urls", {})
    assert urls and all(u.startswith("https://") for u in urls.values())


def test_torch_requirement_admits_the_pinned_cpu_wheel(project):
    torch_req = next(Requirement(r) for r in project["dependencies"] if r.startswith("torch"))
    assert torch_req.specifier.contains("2.13.0")
