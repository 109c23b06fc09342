"""Building blocks of ``docs/benchmarks.rst``: list tables, headings, sections and the
provenance line every measured section ends with (``render_docs.py`` assembles the page)."""

from __future__ import annotations

from pathlib import Path

from beyond_normal_scoring import read_json


def table(header: list[str], rows: list[list[str]], widths: str | None = None) -> str:
    lines = [".. list-table::", "   :header-rows: 1"]
    if widths:
        lines.append(f"   :widths: {widths}")
    lines.append("")
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines.extend(f"     - {cell}" for cell in row[1:])
    return "\n".join(lines) + "\n"


def short_commit(commit: str) -> str:
    """The commit's first 12 hex digits, keeping a ``+dirty`` suffix: a run on an
    uncommitted tree is not the code of that commit."""
    sha, plus, suffix = commit.partition("+")
    return sha[:12] + plus + suffix


def provenance_line(p: dict) -> str:
    return (f"*Measured {p['date']} at commit ``{short_commit(p['commit'])}``; "
            f"Python {p['python']}, "
            f"torch {p['torch']}, numpy {p['numpy']}; {p['cpu']} ({p['cpu_count']} cores, "
            f"{p['torch_threads']} torch thread(s)).*")


def heading(text: str, char: str) -> str:
    return f"{text}\n{char * len(text)}\n"


def section(title: str, paragraph: str, provenance: dict, *body: str) -> str:
    """A section of the page: its heading, a paragraph, then ``body`` (tables), then the
    provenance line of the run."""
    return "\n".join([heading(title, "-"), paragraph, "", *body,
                      provenance_line(provenance)]) + "\n"



def load_result(results: Path, name: str) -> dict | None:
    """``results/<name>`` parsed, or ``None`` when that benchmark has not been run (its
    section is then left out)."""
    path = results / name
    return read_json(path) if path.exists() else None


def figure_lines(png: Path, root: Path, width: str, caption: str) -> list[str]:
    """A ``.. figure::`` of ``png`` (relative to ``docs/``, one level below ``root``)."""
    rel = Path("..") / png.relative_to(root)
    return [f".. figure:: {rel.as_posix()}", f"   :width: {width}", "", f"   {caption}", ""]
