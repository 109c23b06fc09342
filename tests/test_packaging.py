"""Packaging metadata: the license is shipped and declared the current way, URLs exist, the
torch requirement admits the CPU wheel the README pins, and (slow) what the sdist and the wheel
hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
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


def _build(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """The sdist and the wheel built by setuptools' PEP 517 backend (no network: the
    backend of this environment) from a copy of the repository's tracked files, and those."""
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip("the license expression needs setuptools >= 77 (pyproject's build-system)")
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                                check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs a git checkout (the tracked files)")
    src, out = tmp_path / "src", tmp_path / "dist"
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    out.mkdir()
    code = ("import sys; from setuptools import build_meta as b; out, log = sys.argv[1:3]; "
            "names = [b.build_sdist(out), b.build_wheel(out)]; "  # (they rewrite sys.argv)
            "open(log, 'w').write(' '.join(names))")  # (the backend logs to stdout)
    done = subprocess.run([sys.executable, "-c", code, str(out), str(tmp_path / "names")],
                          cwd=src, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    sdist, wheel = (tmp_path / "names").read_text().split()
    return out / sdist, out / wheel, listed


@pytest.mark.slow
def test_the_sdist_and_the_wheel_hold_the_package_only(tmp_path: Path) -> None:
    """The wheel: the ``mitools`` package (every tracked module, ``py.typed``) and its
    metadata, nothing else (README: "installs the mitools package only"). The sdist: the
    package, README, LICENSE and the build files; no tests, examples, benchmarks or docs
    (setuptools' default shipped tests/test*.py without conftest.py and the reference
    modules they import, a test suite that could not run)."""
    import mitools

    sdist, wheel, listed = _build(tmp_path)
    tracked = {n for n in listed if n.startswith("mitools/") and n.endswith(".py")}
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = f"mitools-{mitools.__version__}.dist-info"
        metadata = archive.read(f"{info}/METADATA").decode()
    assert all(n.startswith(("mitools/", f"{info}/")) for n in names), names
    assert {n for n in names if n.endswith(".py")} == tracked
    assert "mitools/py.typed" in names and f"{info}/licenses/LICENSE" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert f"\nVersion: {mitools.__version__}\n" in metadata
    assert "\nRequires-Python: >=3.10\n" in metadata and "\nLicense-Expression: MIT\n" in metadata
    assert "\nDescription-Content-Type: text/markdown\n" in metadata
    with tarfile.open(sdist) as archive:
        top = {Path(m.name).parts[1] for m in archive.getmembers() if len(Path(m.name).parts) > 1}
    assert top == {"mitools", "mitools.egg-info", "LICENSE", "README.md", "pyproject.toml",
                   "MANIFEST.in", "PKG-INFO", "setup.cfg"}, top


def test_python_classifiers_match_the_checked_versions(project):
    """The versions named are the floor that ruff and mypy check against and 3.11, which CI
    runs the tests on; requires-python starts at the floor."""
    tools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    floor = tools["mypy"]["python_version"]
    assert tools["ruff"]["target-version"] == "py" + floor.replace(".", "")
    assert project["requires-python"] == f">={floor}"
    named = {c.rsplit(" :: ", 1)[1] for c in project["classifiers"]
             if c.startswith("Programming Language :: Python :: 3.")}
    assert {floor, "3.11"} <= named
