"""The Python examples of the README and the docs run, so that they cannot rot unseen.

Docstring examples run as doctests (``--doctest-modules``); the ``.. code-block:: python``
blocks of the ``.rst`` pages and the fenced ```` ```python ```` blocks of ``README.md`` are
run here. Each page's blocks run in order in one fresh namespace (later blocks use names that
earlier ones defined), in this process, on one torch thread, in a temporary directory. A block
whose first line is ``>>>`` runs as a doctest, so the outputs it shows are compared (with the
flags of ``pyproject.toml``: ``NUMBER`` compares a printed float to the precision written).

Some blocks cannot run as they stand. Two tables below say which, each entry visibly:

* ``CONTEXT``: blocks that use names the prose around them leaves to the reader (``encoder``,
  ``loader``, "your" ``x`` and ``y``). Their context is defined here, before the block runs,
  so that the calls the block shows are still executed.
* ``EXEMPT``: blocks that cannot run here at all, with the reason.

Both are keyed by (page, the block's first line); an entry that matches no block fails
``test_tables_match_blocks``, so a table cannot outlive the example it describes.
"""

from __future__ import annotations

import doctest
import io
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

try:  # the checker that knows NUMBER, as --doctest-modules uses (pytest's, not public)
    from _pytest.doctest import _get_checker
except ImportError:  # pragma: no cover - a pytest without it: outputs compared exactly
    _get_checker = doctest.OutputChecker

ROOT = Path(__file__).resolve().parents[1]

# Pages whose examples train for long (``pytest -m slow`` runs them). None now: the longest,
# getting_started.rst (estimate_mi on n = 5,000 samples of 20 + 20 dimensions, then 2,000
# training steps, about 14 s on one thread), is the page a newcomer reads first.
SLOW: set[str] = set()

# Names a block uses that the prose leaves to the reader, defined before the block runs.
_ARRAYS = """
import numpy as np
_rng = np.random.default_rng(0)
x = _rng.normal(size=(400, 2))
y = x + _rng.normal(size=(400, 2))
x_new, y_new = x[:5], y[:5]
"""
_TRAINING = """
dim_z, dim_s, beta = 16, 2, 0.1
encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, dim_z))
head = torch.nn.Linear(dim_z, 1)
enc_opt = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-3)
task_loss = torch.nn.functional.mse_loss
loader = [(torch.randn(16, 1, 4, 4), torch.randn(16, 1), torch.randn(16, dim_s))
          for _ in range(2)]
"""
_CELLS = """
dim_cell = 16
encoder = torch.nn.Conv2d(1, dim_cell, 3, padding=1)        # images -> cells
head = torch.nn.Linear(dim_cell, 1)
def task_loss(cells, label):
    return torch.nn.functional.mse_loss(head(cells.mean((2, 3))), label)
"""
CONTEXT: dict[tuple[str, str], str] = {
    ("README.md", "import mitools"): _ARRAYS,
    ("README.md", "loss_fn = mitools.LocalMILoss(\"infonce\", mitools.SeparableCritic(128, 128), "
                  "reduction=\"max\","):
        "cell_features, sentence_vectors = torch.randn(16, 128, 8, 8), torch.randn(16, 128)",
    ("docs/guide/classical.rst", "from mitools import classical"): _ARRAYS + """
label = (x[:, 0] > 0).astype(int)
counts = _rng.poisson(np.exp(x[:, 0]))
""",
    ("docs/guide/distributed.rst", "from mitools import bounds"):
        "critic = mitools.SeparableCritic(8, 8)\nx, y = torch.randn(16, 8), torch.randn(16, 8)",
    ("docs/guide/upper_bounds.rst", "from mitools.conditionals import DiagonalGaussian"):
        _TRAINING,
    ("docs/guide/upper_bounds.rst#2", "from mitools.conditionals import DiagonalGaussian"):
        _CELLS,  # loader, dim_s and beta as for the first block
}

# Blocks that cannot run here, with the reason.
EXEMPT: dict[tuple[str, str], str] = {
    ("docs/guide/distributed.rst", "loss_fn = mitools.LocalMILoss(\"infonce\", critic, "
                                   "reduction=\"max\", gather=True,"):
        "DistributedDataParallel needs a process group (torchrun, several processes); "
        "tests/test_distributed.py runs the gathered loss on two gloo processes",
}

# pyproject's doctest flags; NUMBER (a float compared to the precision written) is pytest's
OPTIONFLAGS = (doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
               | doctest.register_optionflag("NUMBER"))

_RST_DIRECTIVE = re.compile(
    r"^(?P<indent>\s*)\.\. (?:code-block|code|sourcecode)::\s*(?P<lang>\S*)\s*$")
_MD_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)\s*$")
PYTHON = {"python", "py", "python3", "pycon"}


@dataclass(frozen=True)
class Block:
    """One Python example: its page, its position and its dedented source."""

    page: str  # the page's path; "#k" appended for the k-th block with the same first line
    index: int  # 0-based among the page's Python blocks
    lineno: int  # 1-based line of the source's first line in the page
    source: str

    @property
    def first_line(self) -> str:
        return self.source.splitlines()[0].strip()

    @property
    def key(self) -> tuple[str, str]:
        """The table key: (page, first line); ``page#k`` for the k-th block with that line."""
        return (self.page, self.first_line)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def rst_blocks(text: str, page: str = "<rst>") -> list[Block]:
    """The ``.. code-block:: python`` bodies of an RST text, in order.

    The body is every line after the directive that is blank or indented more than the
    directive, after its options (``:caption: ...``); it ends at the first non-blank line
    indented no more than the directive.
    """
    lines = text.splitlines()
    sources: list[tuple[int, str]] = []
    i = 0
    while i < len(lines):
        match = _RST_DIRECTIVE.match(lines[i])
        i += 1
        if not match:
            continue
        indent = len(match["indent"])
        while i < len(lines) and lines[i].strip().startswith(":") and _indent(lines[i]) > indent:
            i += 1  # the directive's options
        start = i
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
            i += 1
        body = lines[start:i]
        while body and not body[0].strip():
            body, start = body[1:], start + 1
        source = textwrap.dedent("\n".join(body)).rstrip() + "\n"
        if body and match["lang"].lower() in PYTHON:  # other languages' bodies are skipped whole
            sources.append((start + 1, source))
    return _numbered(page, sources)


def markdown_blocks(text: str, page: str = "<md>") -> list[Block]:
    """The fenced ```` ```python ```` bodies of a Markdown text, in order."""
    lines = text.splitlines()
    sources: list[tuple[int, str]] = []
    i = 0
    while i < len(lines):
        match = _MD_FENCE.match(lines[i])
        i += 1
        if not match:
            continue
        start = i
        while i < len(lines) and lines[i].strip() != "```":
            i += 1
        if i == len(lines):
            raise ValueError(f"{page}:{start}: a ``` fence that is never closed")
        if match["lang"].lower() in PYTHON:
            source = textwrap.dedent("\n".join(lines[start:i])).rstrip() + "\n"
            sources.append((start + 1, source))
        i += 1  # the closing fence
    return _numbered(page, sources)


def _numbered(page: str, sources: list[tuple[int, str]]) -> list[Block]:
    blocks, seen = [], {}
    for index, (lineno, source) in enumerate(sources):
        first = source.splitlines()[0].strip()
        seen[first] = seen.get(first, 0) + 1
        name = page if seen[first] == 1 else f"{page}#{seen[first]}"
        blocks.append(Block(name, index, lineno, source))
    return blocks


def page_blocks(page: str) -> list[Block]:
    text = (ROOT / page).read_text(encoding="utf-8")
    return markdown_blocks(text, page) if page.endswith(".md") else rst_blocks(text, page)


def pages() -> list[str]:
    """README.md and every docs page that holds a Python block (the gallery runs in Sphinx)."""
    found = ["README.md"]
    for path in sorted((ROOT / "docs").rglob("*.rst")):
        rel = path.relative_to(ROOT)
        if {"_build", "auto_examples"} & set(rel.parts):
            continue
        found.append(rel.as_posix())
    return [page for page in found if page_blocks(page)]


def run_block(block: Block, namespace: dict) -> None:
    """Run one block in ``namespace``: as a doctest when it starts with ``>>>``.

    Raises the block's exception, or AssertionError with the doctest report; tracebacks name
    the page and its line numbers.
    """
    filename = str(ROOT / block.page.split("#")[0])
    if block.first_line.startswith(">>>"):
        test = doctest.DocTestParser().get_doctest(
            block.source, namespace, f"{block.page} block {block.index}", filename,
            block.lineno - 1)
        report = io.StringIO()
        runner = doctest.DocTestRunner(checker=_get_checker(), optionflags=OPTIONFLAGS)
        result = runner.run(test, out=report.write, clear_globs=False)
        namespace.update(test.globs)  # the DocTest ran on a copy
        if result.failed:
            raise AssertionError(report.getvalue())
        return
    code = compile("\n" * (block.lineno - 1) + block.source, filename, "exec")
    exec(code, namespace)


def run_page(blocks: list[Block], context: dict | None = None,
             exempt: dict | None = None) -> list[Block]:
    """Run ``blocks`` in order in one fresh namespace; returns the blocks that ran.

    ``context`` maps a block's key to code run just before it; ``exempt`` a key to a reason
    (the block is left out).
    """
    context = CONTEXT if context is None else context
    exempt = EXEMPT if exempt is None else exempt
    namespace: dict = {"__name__": "__docs__"}
    torch.manual_seed(0)
    ran = []
    for block in blocks:
        if block.key in exempt:
            continue
        if block.key in context:
            setup = "import torch, mitools\n" + context[block.key]
            exec(compile(setup, "<context>", "exec"), namespace)
        try:
            run_block(block, namespace)
        except Exception as error:
            raise AssertionError(
                f"{block.page}, block {block.index} (line {block.lineno}) failed:\n"
                f"{block.source}") from error
        ran.append(block)
    return ran


@pytest.fixture
def one_thread(tmp_path, monkeypatch):
    """One torch thread (the machine is shared), a temporary working directory."""
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(
    "page",
    [pytest.param(page, marks=pytest.mark.slow) if page in SLOW else page for page in pages()])
def test_page_examples_run(page, one_thread):
    ran = run_page(page_blocks(page))
    assert ran, f"{page}: every Python block is exempt"


def test_tables_match_blocks():
    keys = {block.key for page in pages() for block in page_blocks(page)}
    for table in (CONTEXT, EXEMPT):
        stale = set(table) - keys
        assert not stale, f"entries that match no block (reword the key): {sorted(stale)}"
    assert not set(CONTEXT) & set(EXEMPT)
    assert SLOW <= set(pages())


def test_expected_pages_are_covered():
    covered = set(pages())
    for page in ["README.md", "docs/index.rst", "docs/getting_started.rst",
                 "docs/guide/local_mi.rst", "docs/guide/upper_bounds.rst"]:
        assert page in covered


# The extractor and the runner themselves: a broken example must fail its page's test.

RST = """\
Title
=====

.. code-block:: python
   :caption: first

   value = 1

   def double(v):
       return 2 * v

A paragraph.

.. code-block:: bash

   echo not python

   .. code-block:: python

      not_python = "the bash block's text"

.. note::

   .. code-block:: python

      value = double(value)
      assert value == 2

.. code-block:: python

   >>> quadruple = 2 * double(value)
   >>> quadruple
   8

.. code-block:: python

   assert quadruple == 8
"""


def test_rst_blocks_are_extracted_in_order_with_their_lines():
    blocks = rst_blocks(RST, "page.rst")
    assert [b.source for b in blocks] == [
        "value = 1\n\ndef double(v):\n    return 2 * v\n",
        "value = double(value)\nassert value == 2\n",
        ">>> quadruple = 2 * double(value)\n>>> quadruple\n8\n",
        "assert quadruple == 8\n",
    ]
    lines = RST.splitlines()
    assert [lines[b.lineno - 1].strip() for b in blocks] == [
        "value = 1", "value = double(value)", ">>> quadruple = 2 * double(value)",
        "assert quadruple == 8"]
    assert len(run_page(blocks, {}, {})) == 4


def test_markdown_blocks_are_extracted():
    text = "# t\n\n```python\na = 1\n```\n\n```bash\nls\n```\n\n```python\nb = a + 1\n```\n"
    blocks = markdown_blocks(text, "README.md")
    assert [(b.lineno, b.source) for b in blocks] == [(4, "a = 1\n"), (12, "b = a + 1\n")]
    with pytest.raises(ValueError, match="never closed"):
        markdown_blocks("```python\na = 1\n")


def test_a_failing_block_fails_the_page():
    broken = RST.replace("assert value == 2", "assert value == 3")
    with pytest.raises(AssertionError, match=r"block 1 \(line 26\)") as info:
        run_page(rst_blocks(broken, "page.rst"), {}, {})
    assert isinstance(info.value.__cause__, AssertionError)


def test_a_wrong_doctest_output_fails_the_page():
    broken = RST.replace("   8\n", "   9\n")
    with pytest.raises(AssertionError, match="block 2") as info:
        run_page(rst_blocks(broken, "page.rst"), {}, {})
    assert "Expected:\n    9\nGot:\n    8" in str(info.value.__cause__)


def test_a_name_defined_nowhere_fails_unless_given_context_or_exempt():
    blocks = rst_blocks(".. code-block:: python\n\n   print(undefined_name)\n", "p.rst")
    with pytest.raises(AssertionError) as info:
        run_page(blocks, {}, {})
    assert isinstance(info.value.__cause__, NameError)
    assert run_page(blocks, {("p.rst", "print(undefined_name)"): "undefined_name = 1"}, {})
    assert run_page(blocks, {}, {("p.rst", "print(undefined_name)"): "a fragment"}) == []
