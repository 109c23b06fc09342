"""Sphinx configuration for the mitools documentation.

Build locally with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
No network is needed: intersphinx is left out on purpose (the CI machines reach only package
registries), and references to torch / numpy types are not resolved.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from datetime import date

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

import mitools  # noqa: E402

project = "mitools"
author = "mitools developers"
copyright = f"{date.today().year}, {author}"
release = mitools.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
]

sphinx_gallery_conf = {
    "examples_dirs": "gallery",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "image_scrapers": ("matplotlib",),
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
}

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
autosummary_generate = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

nitpicky = True
# No intersphinx (no network): names from other libraries cannot be resolved.
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|numpy|np|nn|einops|typing|collections|matplotlib|tqdm)(\..*)?"),
    (r"py:.*", r"(Tensor|Module|Parameter|Generator|dtype|device|Callable|Sequence|Iterator)"),
    (r"py:.*", r"(Any|Optional|Union|Literal|NamedTuple|ArrayLike|Path|PathLike|pathlib\.Path)"),
    (r"py:.*", r"(int|float|str|bool|None|dict|list|tuple|type|object|optional|callable)"),
    (r"py:.*", r"mitools\..*\._.*"),
]

templates_path: list[str] = []
exclude_patterns = ["_build", "**.ipynb_checkpoints", "gallery/*.rst"]
suppress_warnings: list[str] = []

html_theme = "furo" if importlib.util.find_spec("furo") else "alabaster"
html_title = f"mitools {release}"
html_static_path: list[str] = []


def _resolve_reexports(app, env, node, contnode):
    """Resolve re-exported names to where autodoc documents them.

    ``mitools.Name`` (a top-level re-export) and ``mitools.pkg.module.Name`` (a subpackage's
    internal module, e.g. in "Bases:" lines) are documented under the package that exports
    them: try the object's own module, then each parent package in turn.
    """
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("mitools."):
        return None
    *path, name = target.split(".")
    obj = mitools
    for part in [*path[1:], name]:
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    module = getattr(obj, "__module__", None) or ".".join(path)
    parts = module.split(".")
    domain = env.get_domain("py")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if f"{candidate}.{name}" == target:
            continue
        found = domain.resolve_xref(
            env, node["refdoc"], app.builder, node["reftype"], f"{candidate}.{name}", node,
            contnode,
        )
        if found is not None:
            return found
    return None


def setup(app):
    app.connect("missing-reference", _resolve_reexports)
