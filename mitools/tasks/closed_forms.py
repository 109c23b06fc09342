"""Closed forms of Gaussian mutual information: the correlation for a target MI, the MI
between two groups of coordinates of a Gaussian vector."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mitools.option_checks import check_int, check_number

__all__ = ["gaussian_mutual_information", "rho_for_mi"]


def rho_for_mi(mi: float, dim: int) -> float:
    r"""Per-component correlation giving total MI ``mi`` (nats) over ``dim`` components.

    .. math:: \rho = \sqrt{1 - e^{-2 I / d}}

    Raises:
        ValueError: ``mi`` not a finite number >= 0, ``dim`` not an int >= 1.

    Example:
        >>> round(rho_for_mi(2.0, 20), 4)
        0.4258
    """
    mi = check_number("mi", mi, 0, strict=False)
    dim = check_int("dim", dim)
    return math.sqrt(-math.expm1(-2.0 * mi / dim))


def _indices(name: str, idx: Sequence[int] | int) -> list[Any]:
    """A group of coordinates: a sequence of indices, or one index alone (``0`` for ``[0]``)."""
    if isinstance(idx, numbers.Integral) and not isinstance(idx, bool):
        return [idx]
    if isinstance(idx, (str, bytes)) or not isinstance(idx, Iterable):
        raise TypeError(
            f"gaussian_mutual_information: {name} must be a sequence of coordinate indices "
            f"(e.g. [0, 1]) or one index, got {type(idx).__name__} {idx!r}"
        )
    return list(idx)


def gaussian_mutual_information(
    cov: Tensor, a: Sequence[int] | int, b: Sequence[int] | int
) -> float:
    r"""Mutual information (nats) between two groups of coordinates of a Gaussian vector.

    .. math::

        I(Z_A; Z_B) = \tfrac12\big[\log\det\Sigma_{AA} + \log\det\Sigma_{BB}
            - \log\det\Sigma_{A\cup B}\big]

    Args:
        cov: the covariance matrix ``(D, D)``, symmetric positive definite: a tensor, numpy
            array or nested list (computed in float64).
        a: indices of the first group, ints in ``[0, D)`` (one int for a group of one).
        b: indices of the second group (disjoint from ``a``).

    Raises:
        TypeError: ``cov`` not a real matrix; ``a`` or ``b`` neither indices nor one index.
        ValueError: ``cov`` not square, or, restricted to ``a`` and ``b``, not finite,
            symmetric and positive definite; an index out of range or repeated; ``a`` and
            ``b`` empty or overlapping.

    Example:
        >>> import torch
        >>> cov = torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
        >>> round(gaussian_mutual_information(cov, [0], [1]), 4)  # -0.5 log(1 - 0.64)
        0.5108
    """
    if not isinstance(cov, Tensor):
        try:
            cov = torch.as_tensor(np.asarray(cov, dtype=np.float64))
        except (TypeError, ValueError):
            raise TypeError(
                f"cov must be a matrix of real numbers (tensor, numpy array or nested list), "
                f"got {type(cov).__name__}"
            ) from None
    if cov.is_complex():
        raise TypeError(f"cov must hold real numbers, got dtype {cov.dtype}")
    if cov.dim() != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"cov must be a square matrix (D, D), got shape {tuple(cov.shape)}")
    # indices of the matrix: a bool or a float is not one, and a negative one would slip past
    # the disjointness check (-1 is also D - 1)
    a, b = ([check_int(f"gaussian_mutual_information: {name}", i, 0, cov.shape[0] - 1)
             for i in _indices(name, idx)] for name, idx in (("a", a), ("b", b)))
    if not a or not b or set(a) & set(b):
        raise ValueError(f"a and b must be non-empty and disjoint, got a={a}, b={b}")
    for name, idx in (("a", a), ("b", b)):
        if len(set(idx)) != len(idx):
            raise ValueError(
                f"gaussian_mutual_information: {name} must not repeat an index, got {name}={idx}"
            )
    cov = cov.double()  # exact for every float and any integer below 2**53
    union = a + b
    block = cov[union][:, union]
    if not bool(torch.isfinite(block).all()):
        raise ValueError(
            f"gaussian_mutual_information: cov holds a non-finite entry in the rows and columns "
            f"{union} (shape {tuple(cov.shape)})"
        )
    # a non-symmetric matrix is not a covariance: its determinants give a number with no
    # meaning ([[1, 0.9], [0, 1]] gave 0 nats); the sign of a determinant does not tell a
    # positive definite block from one with two negative eigenvalues, a Cholesky factor does
    scale = float(block.abs().max())
    if not torch.allclose(block, block.T, rtol=1e-9, atol=1e-12 * scale):
        gap = float((block - block.T).abs().max())
        raise ValueError(
            f"gaussian_mutual_information: cov must be symmetric, but cov restricted to "
            f"{union} differs from its transpose by up to {gap:.3g}"
        )

    def logdet(idx: list[int]) -> float:
        sub = cov[idx][:, idx]
        chol, info = torch.linalg.cholesky_ex(sub)
        if int(info) != 0:
            raise ValueError(
                f"gaussian_mutual_information: cov restricted to {idx} is not positive definite "
                "(a covariance of coordinates with a non-degenerate joint density is)"
            )
        return 2.0 * float(torch.log(torch.diagonal(chol)).sum())

    return 0.5 * (logdet(a) + logdet(b) - logdet(union))
