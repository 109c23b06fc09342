"""Saving an :class:`~mitools.estimate.MIEstimate` and loading it back, critics included.

The file holds tensors and plain values only (numbers, strings, lists, dicts), written by
:func:`torch.save` and read with ``torch.load(..., weights_only=True)``, which refuses
anything else: loading a file from elsewhere cannot run code. Critics are stored as their
``state_dict`` and rebuilt from the options they were made with.
"""

from __future__ import annotations

import copy
import io
import re
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from torch import nn

from mitools.estimate.data import MarginTransform, Standardization
from mitools.estimate.diagnostics import Diagnostics
from mitools.estimate.folds import Split
from mitools.estimators import Estimator, get_estimator

if TYPE_CHECKING:
    from mitools.estimate.result import MIEstimate

__all__ = ["load_estimate", "save_estimate"]

FORMAT = "mitools.MIEstimate"
VERSION = 1
_SCALARS = ("value", "stderr", "level", "method", "uncertainty", "bound", "held_out",
            "in_sample", "optimism", "report", "sided")
#: fold fields that files written before them lack (loaded with the field's default)
_FOLD_SCALARS_ADDED = ("gain_over_start", "held_out_gain", "stopped_at_check")
_FOLD_SCALARS = ("held_out", "in_sample", "value", "best_step", "steps", "start_held_out",
                 "log_partition", "converged", *_FOLD_SCALARS_ADDED)


def save_estimate(result: MIEstimate, path: str | Path) -> None:
    """Write ``result`` to ``path`` (any suffix; ``.pt`` is usual), critics included.

    Args:
        result: an :class:`~mitools.estimate.MIEstimate`, neural or classical.
        path: the file to write.

    Raises:
        TypeError: ``result`` not an :class:`~mitools.estimate.MIEstimate`.
        OSError: the file cannot be written (no such directory, no permission).

    Example:
        >>> import tempfile, os, mitools
        >>> from mitools.estimate import MIEstimate
        >>> x, y = mitools.CorrelatedGaussian(dim=1, mi=0.5).sample(400, generator=0)
        >>> r = mitools.estimate_mi(x, y, folds=2, max_steps=20, eval_every=10)
        >>> path = os.path.join(tempfile.mkdtemp(), "estimate.pt")
        >>> r.save(path)
        >>> MIEstimate.load(path).value == r.value
        True
    """
    from mitools.estimate.result import MIEstimate  # at the call, as result.py imports this

    if not isinstance(result, MIEstimate):  # an AttributeError ('value') escaped
        raise TypeError(
            f"save_estimate: result must be an MIEstimate (from estimate_mi, ksg, ...), got "
            f"{type(result).__name__}"
        )
    payload: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    payload.update({name: getattr(result, name) for name in _SCALARS})
    payload["interval"] = [float(v) for v in result.interval]
    payload["diagnostics"] = None if result.diagnostics is None else asdict(result.diagnostics)
    if payload["diagnostics"] is not None:
        payload["diagnostics"]["flags"] = list(payload["diagnostics"]["flags"])
    payload["margins"] = None if result.margins is None else [
        {"kind": m.kind, "params": [p.cpu() for p in m.params], "dim_in": m.dim_in}
        for m in result.margins
    ]
    payload["settings"] = plain(dict(result.settings))
    payload["folds"] = [_fold_payload(f) for f in result.folds]
    Path(path).write_bytes(_loadable_bytes(payload))


def plain(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers and tuples as lists, recursively: what
    ``torch.load(weights_only=True)`` reads back (it refuses ``np.float64(5.0)``, a float
    subclass). Anything else is returned as is.

    Example:
        >>> import numpy as np
        >>> plain({"clip": np.float64(5.0), "hidden": (np.int64(8),)})
        {'clip': 5.0, 'hidden': [8]}
    """
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    item = getattr(value, "item", None)
    if type(value).__module__ == "numpy" and callable(item) and getattr(value, "ndim", 1) == 0:
        return item()
    return value


def _loadable_bytes(payload: dict[str, Any]) -> bytes:
    """``payload`` as :func:`torch.save` writes it, once :func:`load_estimate`'s own reading
    (``weights_only``) has read it back; what it could not read is refused, not written."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    buffer.seek(0)
    try:
        torch.load(buffer, map_location="cpu", weights_only=True)
    except Exception as exc:  # any refusal: the file would be unreadable
        raise ValueError(
            "cannot save this estimate: load() could not read it back, because it holds a "
            f"value other than tensors and plain values ({_first_line(exc)}); look for an "
            "option given as an object in result.settings"
        ) from None
    return buffer.getvalue()


def _first_line(exc: BaseException) -> str:
    """An exception's type and first line, without terminal colour codes."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _fold_payload(fold: Any) -> dict[str, Any]:
    out = {name: getattr(fold, name) for name in _FOLD_SCALARS}
    out["history"] = [[float(v) for v in h] for h in fold.history]
    out["split"] = [p.cpu() for p in fold.split]
    out["standardization"] = [t.cpu() for t in fold.standardization]
    out["critic"] = {k: v.cpu() for k, v in fold.critic.state_dict().items()}
    out["estimator"] = {k: v.cpu() for k, v in fold.estimator.state_dict().items()}
    return out


def load_estimate(path: str | Path, critic: nn.Module | None = None,
                  bound: Estimator | None = None) -> MIEstimate:
    """Read an estimate written by :func:`save_estimate`, on the CPU.

    Args:
        path: the file.
        critic: a module of the same architecture, needed only when the estimate was made
            with a custom critic module (each fold loads its weights into a copy).
        bound: an estimator of the same kind, needed only when the estimate was made with a
            custom :class:`~mitools.estimators.Estimator` object.

    Returns:
        The :class:`~mitools.estimate.MIEstimate`, with trained critics in evaluation mode.

    Raises:
        ValueError: the file is not a mitools estimate, holds objects other than tensors and
            plain values (refused by ``torch.load(weights_only=True)``), needs ``critic=``
            or ``bound=`` (the message says which), or is given a ``bound=`` of another kind
            (another ``name``) or a ``critic=`` or ``bound=`` whose weights do not fit the
            saved ones.
        TypeError: a ``critic=`` that is not an ``nn.Module`` or a ``bound=`` that is not an
            :class:`~mitools.estimators.Estimator` (a name, for instance).
        FileNotFoundError: no such file.
    """
    from mitools.estimate.critic import build_critic
    from mitools.estimate.result import FoldResult, HistoryPoint, MIEstimate

    for arg, value, kind in (("critic", critic, nn.Module), ("bound", bound, Estimator)):
        if value is not None and not isinstance(value, kind):  # a name: rebuilt by itself
            raise TypeError(
                f"load: {arg}= takes a {kind.__name__} of the kind the estimate was made with "
                f"(needed only for a custom one; a named {arg} is rebuilt from the file: "
                f"leave {arg}=None), got {type(value).__name__} {value!r}")
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:  # no such file, a directory, no permission: as they are
        raise
    except Exception as exc:  # an empty, truncated or foreign file
        raise ValueError(
            f"{path}: refused: not a mitools estimate, nor a file of tensors and plain values "
            f"(torch.load with weights_only=True could not read it: {_first_line(exc)})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a mitools estimate (no {FORMAT!r} format marker)")
    if payload.get("version") != VERSION:
        raise ValueError(f"{path}: estimate file version {payload.get('version')!r}; this "
                         f"mitools reads version {VERSION}")
    settings = payload["settings"]
    saved = payload.get("bound")
    if bound is not None and saved not in (None, "custom") and getattr(
            bound, "name", saved) != saved:
        raise ValueError(f"{path}: the estimate was made with the bound {saved!r}; bound= "
                         f"must be one of that kind, got {getattr(bound, 'name', bound)!r}")
    folds = []
    for f in payload["folds"]:  # a loop over folds
        folds.append(FoldResult(
            history=[HistoryPoint(int(h[0]), h[1], h[2]) for h in f["history"]],
            split=Split(*f["split"]),
            critic=_load(f["critic"], settings, "critic", critic, lambda: build_critic(
                settings["critic"], settings["dim_x"], settings["dim_y"],
                tuple(settings["hidden"]), settings["embed_dim"], settings["potentials"],
                settings["residual"]), path),
            estimator=_load(f["estimator"], settings, "bound", bound, lambda: get_estimator(
                settings["bound"], **settings.get("bound_kwargs", {})), path),
            standardization=Standardization(*f["standardization"]),
            **{name: f[name] for name in _FOLD_SCALARS  # fields added later: defaults
               if name in f or name not in _FOLD_SCALARS_ADDED},
        ))
    diagnostics = payload["diagnostics"]
    if diagnostics is not None:
        diagnostics = Diagnostics(**{**diagnostics, "flags": tuple(diagnostics["flags"])})
    margins = payload["margins"]
    if margins is not None:
        margins = tuple(MarginTransform(m["kind"], tuple(m["params"]), m["dim_in"])
                        for m in margins)
    return MIEstimate(
        interval=(payload["interval"][0], payload["interval"][1]),
        folds=tuple(folds),
        diagnostics=diagnostics,
        margins=margins,
        settings=settings,
        **{name: payload[name] for name in _SCALARS},
    )


_Module = TypeVar("_Module", bound=nn.Module)


def _load(state: dict, settings: dict, key: str, template: _Module | None,
          build: Callable[[], _Module], path: Path) -> _Module:
    """A module (``key``: ``"critic"`` or ``"bound"``) rebuilt from the settings, or a copy of
    ``template`` for custom ones, with ``state`` loaded, in evaluation mode."""
    if template is not None:
        module = copy.deepcopy(template)
    elif settings.get(key) in (None, "custom"):
        what = "critic module" if key == "critic" else "Estimator object"
        raise ValueError(f"{path}: the estimate was made with a custom {what}; pass one of the "
                         f"same kind as {key}=")
    else:
        module = build()
    module = module.to(getattr(torch, settings.get("dtype", "float32")))
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:  # another architecture: missing, unexpected or resized weights
        detail = " ".join(str(exc).split())[:300]
        raise ValueError(f"{path}: the saved {key} does not fit {type(module).__name__}: "
                         f"{detail} (pass a {key}= of the same architecture "
                         "as the one the estimate was made with)") from None
    return module.eval()


def _is_plain(value: Any) -> bool:
    """Whether ``value`` is a plain value ``weights_only`` loading accepts."""
    if value is None or type(value) in (bool, int, float, str):  # not numpy's subclasses
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False
