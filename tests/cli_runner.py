"""The command line run in-process, as the CLI tests use it (``main`` from a data folder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mitools.cli import main


def run_main(capsys: pytest.CaptureFixture[str], data: Path, *args: str) -> tuple[int, str, str]:
    """``mitools estimate ARGS`` run from ``data``: the exit code, stdout and stderr."""
    cwd = os.getcwd()
    os.chdir(data)
    try:
        code = main(["estimate", *args])
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    return code, out, err
