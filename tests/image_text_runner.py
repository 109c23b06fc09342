"""The image-text example's command line run in-process, as its tryout tests use it: a small
run's options, and the one error line of a usage error (exit 2) or a runtime error (exit 1)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from examples.image_text.__main__ import main

#: the tiny preset on a few dozen pairs: a whole command in seconds
SMALL = ("--preset", "tiny", "--threads", "1", "--n-train", "32", "--n-test", "16",
         "--batch-size", "16")
PROG = "python -m examples.image_text"


def usage_error(capsys: pytest.CaptureFixture[str], argv: Sequence[str]) -> str:
    """``main(argv)`` must exit 2 (a usage error); its one error line."""
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def runtime_error(capsys: pytest.CaptureFixture[str], argv: Sequence[str]) -> str:
    """``main(argv)`` must return 1 with one error line (no traceback)."""
    assert main(list(argv)) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [x for x in err.splitlines() if "error:" in x]
    return line
