"""The README's quick start and CI stay in step: CI runs exactly the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the quick start must hold a bash code block"
    return [ln for ln in block.group(1).splitlines() if ln.strip() and not ln.startswith("#")]


def test_quick_start_has_two_commands_each_installing_torch_2_13():
    commands = _quick_start_commands()
    assert len(commands) == 2
    for command in commands:
        assert command.startswith("pip install torch==2.13.0 ")


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = _quick_start_commands()[1]
    assert "pytest" in test_command
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci


def test_install_instructions_work_from_a_clone():
    # mitools is not on PyPI: "pip install mitools[io]" would resolve against the registry
    texts = {p: p.read_text() for p in [ROOT / "README.md", *ROOT.glob("docs/**/*.rst"),
                                        *ROOT.glob("mitools/**/*.py"),
                                        *ROOT.glob("examples/**/*.py")]
             if "_build" not in p.parts}
    for path, text in texts.items():
        assert not re.search(r"install ['\"]?mitools\[", text), path
    guide = (ROOT / "docs" / "getting_started.rst").read_text()
    install = guide.split("Install\n-------", 1)[1].split("\n\n.. code-block", 2)[1]
    assert "pip install torch==2.13.0 -e .  " in install  # as the README's "Installing"
    assert 'pip install torch==2.13.0 -e .              # the library' in (
        ROOT / "README.md").read_text()
    assert "``[io]``" in guide and '-e ".[NAME]"' in guide


def test_readme_says_where_mi_estimate_comes_from():
    import mitools

    readme = (ROOT / "README.md").read_text()
    assert "from mitools import MIEstimate" in readme
    assert readme.index("from mitools import MIEstimate") < readme.index('MIEstimate.load("mi.pt")')
    assert "MIEstimate" in mitools.__all__ and mitools.MIEstimate is mitools.estimate.MIEstimate
