"""The interface of conditional densities q(y | x) and the checks every model shares."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from mitools.critics.base import Critic, _check_widths, dot_scores, mlp
from mitools.option_checks import check_int, check_number
from mitools.tasks.seeding import _generator

__all__ = ["ConditionalDensity"]

LOG_2PI = math.log(2.0 * math.pi)


class ConditionalDensity(Critic):
    r"""Base class of conditional densities :math:`q(y \mid x)` that score every pair of a batch.

    Subclasses implement ``_log_prob`` (all pairs), ``_log_prob_pairs`` (matched pairs) and,
    where natural, ``_sample``; the public methods check the inputs first, with the checks of
    the critics, so every model reports bad shapes alike. Called as ``q(x, y)`` a conditional
    density is a :class:`~mitools.critics.Critic` whose scores are log-densities.

    The all-pairs log-density is a *score tensor* in the sense of :mod:`mitools.bounds`:
    ``q.log_prob(y, x)[..., i, j] = log q(y_j | x_i)``, with the positive of row ``i`` at
    column ``i`` (or ``i + offset`` with gathered columns). The generative bounds
    (:func:`mitools.bounds.ba`, :func:`~mitools.bounds.club`, :func:`~mitools.bounds.l1out`,
    ...) consume it directly.

    It declares ``log_density = True``: the estimators that need log-densities
    (``needs_log_density``: BA, DoE, CLUB, vCLUB, L1Out) accept it in
    :class:`~mitools.local.LocalMILoss` and :class:`~mitools.local.GlobalMILoss`. A model
    that factorises its log-density (``separable``, :meth:`~mitools.critics.Critic.factorise`:
    the Gaussians) takes their fast paths.

    Attributes:
        dim_x: features of the conditioning variable ``x``.
        dim_y: features of the modelled variable ``y``.
    """

    dim_x: int
    dim_y: int
    #: The scores are normalised log-densities :math:`\log q(y_j \mid x_i)`.
    log_density: bool = True
    _kind = "conditional density"

    def _check(self, x: Tensor, y: Tensor | None, same_n: bool) -> None:
        name = type(self).__name__
        if y is not None:
            self._check_inputs(x, y)  # the critics' checks: types, feature counts, broadcasting
            if same_n and x.shape[-2] != y.shape[-2]:
                raise ValueError(
                    f"{name}: matched pairs need as many x as y, got x {tuple(x.shape)} and "
                    f"y {tuple(y.shape)}; use log_prob(y, x) to score every pair"
                )
            return
        if not isinstance(x, Tensor) or not x.is_floating_point():
            got = f"dtype {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
            raise TypeError(
                f"{name}: x must be a floating-point tensor of shape (..., n, {self.dim_x}), "
                f"got {got}"
            )
        self._check_device("x", x)
        self._check_rank_and_width("x", x, self.dim_x)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Critic order: ``q(x, y)`` is ``q.log_prob(y, x)``, scores ``(..., N, M)``.

        So a conditional density drops in wherever a critic ``f(x, y)`` is expected.
        """
        return self.log_prob(y, x)

    def log_prob(self, y: Tensor, x: Tensor) -> Tensor:
        r"""Log-density of every pair, :math:`\log q(y_j \mid x_i)`, in nats.

        Args:
            y: ``(..., M, dim_y)``.
            x: ``(..., N, dim_x)``; leading dimensions broadcast with ``y``'s.

        Returns:
            ``(..., N, M)``: row ``i`` conditions on ``x_i``, column ``j`` scores ``y_j``.

        Raises:
            TypeError: ``x`` or ``y`` is not a floating-point tensor.
            ValueError: wrong feature count, fewer than 2 dimensions, leading dimensions that
                do not broadcast.
        """
        self._check(x, y, same_n=False)
        return self._log_prob(y, x)

    def log_prob_pairs(self, y: Tensor, x: Tensor) -> Tensor:
        r"""Log-density of matched pairs, :math:`\log q(y_i \mid x_i)`, without all pairs.

        Equal to the diagonal of :meth:`log_prob` at a cost linear in ``N``.

        Args:
            y: ``(..., N, dim_y)``.
            x: ``(..., N, dim_x)``.

        Returns:
            ``(..., N)``.

        Raises:
            TypeError, ValueError: as :meth:`log_prob`, and when ``x`` and ``y`` hold
                different numbers of samples.
        """
        self._check(x, y, same_n=True)
        return self._log_prob_pairs(y, x)

    def sample(self, x: Tensor, generator: torch.Generator | int | None = None) -> Tensor:
        r"""Draw one :math:`y \sim q(\cdot \mid x_i)` for every row, ``(..., N, dim_y)``.

        Args:
            x: ``(..., N, dim_x)``.
            generator: optional ``torch.Generator`` on ``x``'s device, or an int seed (as a
                task's ``sample``), for reproducible draws; ``None``: torch's global RNG.

        Samples are reparameterised (differentiable in the model's parameters and ``x``),
        except the component choice of a mixture.

        Raises:
            TypeError: ``x`` not a floating-point tensor, ``generator`` neither a generator,
                an int nor ``None``.
        """
        self._check(x, None, same_n=False)
        # an int seed reached torch.randn, which listed its signatures
        gen = _generator(generator, x.device, name=f"{type(self).__name__}.sample: generator")
        return self._sample(x, gen)

    def learning_loss(self, y: Tensor, x: Tensor) -> Tensor:
        r"""Negative mean log-likelihood of matched pairs, :math:`-\frac1N\sum_i\log q(y_i|x_i)`.

        Minimising it fits :math:`q` to :math:`p(y \mid x)` by maximum likelihood: the
        ``learning_loss`` of Cheng et al. (2020), the way :math:`q` is trained for CLUB, L1Out,
        BA and DoE. Averaged over every leading dimension; a scalar.
        """
        return -self.log_prob_pairs(y, x).mean()

    # Subclasses implement these three.
    def _log_prob(self, y: Tensor, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _log_prob_pairs(self, y: Tensor, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _sample(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement sample()")


def _check_min_scale(min_scale: float) -> float:
    return check_number("min_scale", min_scale, 0)


class _MLPConditional(ConditionalDensity):
    """A conditional density whose ``n_params`` parameters per row come from one MLP of ``x``."""

    def __init__(self, dim_x: int, dim_y: int, hidden: Sequence[int], min_scale: float,
                 n_params: int):
        super().__init__()
        dim_x, dim_y = check_int("dim_x", dim_x), check_int("dim_y", dim_y)
        self.dim_x, self.dim_y = dim_x, dim_y
        self.min_scale = _check_min_scale(min_scale)
        self.net = mlp(dim_x, _check_widths(hidden), n_params)

    def extra_repr(self) -> str:
        return f"dim_x={self.dim_x}, dim_y={self.dim_y}, min_scale={self.min_scale}"


def _quadratic_features(y: Tensor) -> Tensor:
    """``[y^2, y, 1]`` ``(..., M, 2D + 1)``: the column factors of a diagonal Gaussian."""
    return torch.cat([y * y, y, y.new_ones((*y.shape[:-1], 1))], dim=-1)


def _diagonal_gaussian_factors(mean: Tensor, scale: Tensor) -> Tensor:
    r"""Row factors ``(..., N, 2D + 1)`` of :math:`\log\mathcal N(y; \mu, \operatorname{diag}
    \sigma^2)` against :func:`_quadratic_features`.

    With :math:`p = \sigma^{-2}`, the log-density is quadratic in :math:`y`:
    :math:`\sum_k [-\tfrac12 p_k y_k^2 + \mu_k p_k y_k] + c` with
    :math:`c = -\tfrac D2\log 2\pi - \sum_k\log\sigma_k - \tfrac12\sum_k \mu_k^2 p_k`,
    so ``u = [-p/2, mu p, c]`` against ``v = [y^2, y, 1]``.
    """
    precision = scale.pow(-2)
    const = (-0.5 * mean.shape[-1] * LOG_2PI - torch.log(scale).sum(-1)
             - 0.5 * (mean * mean * precision).sum(-1))  # fmt: skip
    return torch.cat([-0.5 * precision, mean * precision, const[..., None]], dim=-1)


def _diagonal_gaussian_all_pairs(y: Tensor, mean: Tensor, scale: Tensor) -> Tensor:
    r"""``log N(y_j; mean_i, diag(scale_i^2))`` for every pair, ``(..., N, M)``.

    ``mean``, ``scale``: ``(..., N, D)``; ``y``: ``(..., M, D)``. One matmul of the factors
    (:func:`_diagonal_gaussian_factors` against :func:`_quadratic_features`), so no
    ``(N, M, D)`` tensor is formed.
    """
    return dot_scores(_diagonal_gaussian_factors(mean, scale), _quadratic_features(y))


def _diagonal_gaussian_pairs(y: Tensor, mean: Tensor, scale: Tensor) -> Tensor:
    """``log N(y_i; mean_i, diag(scale_i^2))`` for matched rows, ``(..., N)``."""
    z = (y - mean) / scale
    return -0.5 * y.shape[-1] * LOG_2PI - torch.log(scale).sum(-1) - 0.5 * (z * z).sum(-1)
