"""Critics by name: :func:`get_critic` and :func:`available_critics`."""

from __future__ import annotations

from typing import Any

from torch import nn

from mitools.critics.base import Critic
from mitools.critics.concat import ConcatCritic
from mitools.critics.quadratic import QuadraticCritic
from mitools.critics.separable import BilinearCritic, SeparableCritic

__all__ = ["available_critics", "get_critic"]


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


def get_critic(name: str | nn.Module, dim_x: int, dim_y: int, **kwargs: Any) -> nn.Module:
    """Build a critic by name (or return a given module unchanged).

    Args:
        name: ``"separable"``, ``"bilinear"``, ``"quadratic"`` or ``"concat"``, or an
            ``nn.Module``.
        dim_x: features of ``x``.
        dim_y: features of ``y``.
        **kwargs: constructor arguments of the critic class.

    Example:
        >>> get_critic("bilinear", 3, 4)
        BilinearCritic()
    """
    if isinstance(name, nn.Module):
        return name
    if not isinstance(name, str) or name.lower() not in _CRITICS:
        raise ValueError(f"unknown critic {name!r}; choose one of {sorted(_CRITICS)}")
    return _CRITICS[name.lower()](dim_x, dim_y, **kwargs)
