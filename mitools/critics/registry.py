"""Critics by name: :func:`get_critic` and :func:`available_critics`."""

from __future__ import annotations

import difflib
from typing import Any, TypeVar, overload

from torch import nn

from mitools.critics.base import Critic
from mitools.critics.concat import ConcatCritic
from mitools.critics.quadratic import QuadraticCritic
from mitools.critics.separable import BilinearCritic, SeparableCritic

__all__ = ["available_critics", "critic_name", "get_critic"]


_CRITICS: dict[str, type[Critic]] = {
    "separable": SeparableCritic,
    "bilinear": BilinearCritic,
    "quadratic": QuadraticCritic,
    "concat": ConcatCritic,
}


def available_critics() -> list[str]:
    """Names accepted by :func:`get_critic`.

    Example:
        >>> available_critics()
        ['separable', 'bilinear', 'quadratic', 'concat']
    """
    return list(_CRITICS)


def critic_name(name: Any) -> str:
    """The critic a name means, as :func:`get_critic` and
    :func:`~mitools.estimate.estimate_mi` read it: case-insensitive, spaces around ignored.

    Raises:
        ValueError: not one of :func:`available_critics` (the message lists them, with the
            closest name).

    Example:
        >>> critic_name(" Quadratic ")
        'quadratic'
    """
    key = name.strip().lower() if isinstance(name, str) else None
    if key not in _CRITICS:
        close = difflib.get_close_matches(key, list(_CRITICS), n=1) if key else []
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown critic {name!r}; choose one of {available_critics()}, or "
                         f"pass an nn.Module.{hint}")
    return key


_ModuleT = TypeVar("_ModuleT", bound=nn.Module)


@overload
def get_critic(name: str, dim_x: int, dim_y: int, **kwargs: Any) -> Critic: ...
@overload
def get_critic(name: _ModuleT, dim_x: int, dim_y: int, **kwargs: Any) -> _ModuleT: ...


def get_critic(name: str | nn.Module, dim_x: int, dim_y: int, **kwargs: Any) -> nn.Module:
    """Build a critic by name (or return a given module unchanged).

    Args:
        name: ``"separable"``, ``"bilinear"``, ``"quadratic"`` or ``"concat"``
            (case-insensitive, spaces around ignored, as
            :func:`~mitools.estimators.get_estimator`'s names), or an ``nn.Module``.
        dim_x: features of ``x``.
        dim_y: features of ``y``.
        **kwargs: constructor arguments of the critic class (a name only).

    Raises:
        ValueError: an unknown name; keyword arguments given with a module (they would be
            ignored); a module whose ``dim_x`` or ``dim_y`` differs from the widths given.

    Example:
        >>> get_critic("bilinear", 3, 4)
        BilinearCritic()
    """
    if isinstance(name, nn.Module):
        if kwargs:
            raise ValueError(
                f"get_critic: keyword arguments {sorted(kwargs)} only apply to a critic given "
                f"by name; got the module {type(name).__name__}"
            )
        for arg, want in (("dim_x", dim_x), ("dim_y", dim_y)):
            has = getattr(name, arg, None)
            if isinstance(has, int) and has != want:
                raise ValueError(
                    f"get_critic: the given {type(name).__name__} was built with {arg}={has}, "
                    f"but {arg}={want} was asked for"
                )
        return name
    return _CRITICS[critic_name(name)](dim_x, dim_y, **kwargs)
