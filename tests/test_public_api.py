"""Every public name is exported, documented with a docstring, and listed in the API docs."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
import torch

import mitools

ROOT = Path(__file__).resolve().parents[1]
# The public modules are mitools' direct children, modules and subpackages alike (a subpackage's
# own files are its layout; its __init__ re-exports what it offers).
MODULES = sorted(m.name for m in pkgutil.iter_modules(mitools.__path__, "mitools."))


def _public_members(module):
    names = getattr(module, "__all__", None)
    assert names is not None, f"{module.__name__} must define __all__"
    for name in names:
        yield name, getattr(module, name)


@pytest.mark.parametrize("module_name", MODULES)
def test_module_and_public_names_have_docstrings(module_name):
    module = importlib.import_module(module_name)
    assert inspect.getdoc(module), f"{module_name} lacks a module docstring"
    missing = []
    for name, obj in _public_members(module):
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not (obj.__doc__ or "").strip():
            missing.append(name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not inspect.isfunction(member):
                    continue
                if hasattr(torch.nn.Module, attr) or (member.__doc__ or "").strip():
                    continue  # overrides (forward, extra_repr) are documented on the class
                missing.append(f"{name}.{attr}")
    assert not missing, f"{module_name}: public names without a docstring: {missing}"


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_module_has_an_api_page(module_name):
    pages = "\n".join(p.read_text() for p in (ROOT / "docs" / "api").glob("*.rst"))
    assert f".. automodule:: {module_name}" in pages, f"docs/api lacks {module_name}"


def test_top_level_exports_resolve():
    for name in mitools.__all__:
        assert hasattr(mitools, name), name


def test_docstrings_hold_no_control_characters():
    r"""A backslash escape in a docstring that is not raw (``"\top"`` is a tab and ``op``)
    renders as garbage: ``dot_scores`` read "u_i^<tab>op v_j" (fifteenth tryout)."""
    import ast

    bad = []
    for path in sorted((ROOT / "mitools").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
            if not isinstance(node, kinds):
                continue
            doc = ast.get_docstring(node, clean=False)
            if doc and any(ch in doc for ch in "\t\b\f\a\v\r"):
                bad.append(f"{path.relative_to(ROOT)}:{getattr(node, 'name', '<module>')}")
    assert not bad, f"docstrings with control characters (make them raw strings): {bad}"


def _api_pages_coverage():
    """What docs/api documents: ``{module: True (every documented member) | set of names}``
    from its ``automodule`` directives, and the targets of its explicit ``auto*`` directives."""
    import re

    text = "\n".join(p.read_text() for p in sorted((ROOT / "docs" / "api").glob("*.rst")))
    blocks: dict[str, bool | set[str]] = {}
    for match in re.finditer(r"^\.\. automodule:: (\S+)\n((?:   :.*\n)*)", text, re.M):
        module, options = match.group(1), match.group(2)
        members = re.search(r":members:(.*)", options)
        if ":no-members:" in options:
            blocks.setdefault(module, set())
        elif members and members.group(1).strip():
            names = {n.strip() for n in members.group(1).split(",")}
            previous = blocks.get(module, set())
            blocks[module] = True if previous is True else previous | names
        else:
            blocks[module] = True
    explicit = set(re.findall(r"^\.\. (?:auto)?(?:py:)?\w+:: (mitools\.\S+)", text, re.M))
    return blocks, explicit


@pytest.mark.parametrize("module_name", [m for m in MODULES if m != "mitools.__main__"])
def test_every_public_name_appears_in_the_api_docs(module_name):
    """Each name of a module's ``__all__`` is rendered by docs/api: listed by an explicit
    directive, or a member of an ``automodule`` that documents it. autodoc skips module data
    without a docstring (or ``#:`` comment) where it is assigned: ``mitools.local.BACKENDS``
    and ``REDUCTIONS`` (imported bare) and ``mitools.reductions.Reduction`` were missing from
    the reference (fifteenth tryout)."""
    from sphinx.pycode import ModuleAnalyzer

    module = importlib.import_module(module_name)
    blocks, explicit = _api_pages_coverage()
    attr_docs = ModuleAnalyzer.for_module(module_name).find_attr_docs()
    missing = []
    for name, obj in _public_members(module):
        if f"{module_name}.{name}" in explicit:
            continue
        covered = blocks.get(module_name, set())
        if covered is True:
            if inspect.isclass(obj) or inspect.isfunction(obj):
                if (obj.__doc__ or "").strip():
                    continue
            elif ("", name) in attr_docs:
                continue
        elif name in covered:
            continue
        missing.append(name)
    assert not missing, f"{module_name}: public names the API reference does not render: {missing}"
