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
