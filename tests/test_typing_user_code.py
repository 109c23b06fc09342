"""User code type-checks against mitools' annotations (the package ships ``py.typed``).

``tests/typing_user_code.py`` uses the public API as the README and the guides do; ``mypy
--strict`` must report nothing: no documented call refused, no call result left ``Any``
(twenty-second tryout: critics, ``mlp`` and the local losses returned ``Any`` when called,
``get_critic`` an untyped ``nn.Module``, and ``train_critic`` refused a task whose
``sample(n, generator)`` has no default for ``generator``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")

ROOT = Path(__file__).resolve().parents[1]


def test_user_code_type_checks_strictly(tmp_path: Path) -> None:
    env = {**os.environ, "MYPYPATH": str(ROOT), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
           "--cache-dir", str(tmp_path / "cache"), "--python-version", "3.10",
           "--config-file", "", str(ROOT / "tests" / "typing_user_code.py")]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Success: no issues found" in run.stdout
