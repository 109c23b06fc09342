"""Component-wise correlated Gaussians of known MI (and their cubic variant), with the
optimal critic and the true conditional and marginal densities."""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

from mitools.option_checks import check_int, check_number
from mitools.pair_blocks import rows_per_block
from mitools.tasks.closed_forms import rho_for_mi
from mitools.tasks.seeding import _generator

__all__ = ["CorrelatedGaussian"]

_EULER_GAMMA = 0.5772156649015329

#: The largest MI per component, in nats: beyond, :math:`1 - \rho^2 = e^{-2I/d}` is no normal
#: float64 (and :math:`e^{2I/d}`, in the lautum information, overflows), so the densities
#: cannot be computed.
MAX_MI_PER_COMPONENT = 354.0

#: The noise of ``y`` is resolved when its scale :math:`e^{-I/d}` is at least this many units
#: of rounding (``torch.finfo(dtype).eps``) of a unit-size ``y``.
_NOISE_RESOLUTION_EPS = 8.0


def _resolved_mi_per_component(dtype: torch.dtype) -> float:
    """The MI per component above which the noise of ``y`` falls below the rounding of the
    samples in ``dtype`` (13.9 nats in float32, 34.0 in float64)."""
    return -math.log(_NOISE_RESOLUTION_EPS * torch.finfo(dtype).eps)


def _pair_squared_distances(x: Tensor, y: Tensor, shrink: float) -> Tensor:
    r"""The squared distance :math:`\lVert y_j - c\,x_i\rVert^2` of every pair, ``(..., N, M)``.

    ``x (..., N, D)`` and ``y (..., M, D)``, with batch dimensions that broadcast;
    ``shrink`` is :math:`1 - c`, given as such so that a :math:`c` near 1 keeps its digits.

    Computed from the differences, never as the expanded square
    :math:`\lVert y\rVert^2 - 2c\,x^\top y + c^2\lVert x\rVert^2`, which cancels for close
    pairs (the error :math:`\epsilon\lVert y\rVert^2` of the expansion swamps a small
    distance). For :math:`c \ge 1/2` the difference is :math:`(y_j - x_i) + (1 - c)\,x_i`,
    where :math:`y_j - x_i` is exact for close pairs, so its error is a few rounding errors
    of the difference itself plus :math:`\epsilon (1 - c) \lVert x_i\rVert`; below, it is
    :math:`y_j - c\,x_i` (exactly :math:`y_j` at :math:`c = 0`). The differences are formed
    :data:`~mitools.pair_blocks.PAIR_BLOCK_ELEMENTS` at a time, a loop over blocks of rows (or
    of whole batch entries),
    so the memory is that of the output, and the gradients are finite at zero distance too.
    """
    n, m, d = x.shape[-2], y.shape[-2], x.shape[-1]
    batch = torch.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    dtype = torch.promote_types(x.dtype, y.dtype)
    entries_all = math.prod(batch)  # -1 cannot stand for it: it may be 0, or n or m may
    xs = x.to(dtype).expand(*batch, n, d).reshape(entries_all, n, d)  # copies a broadcast side
    ys = y.to(dtype).expand(*batch, m, d).reshape(entries_all, m, d)
    out = xs.new_empty((entries_all, n, m))
    if out.numel() == 0:
        return out.reshape(*batch, n, m)
    rows = min(n, rows_per_block(m, d))  # rows of an entry per block
    entries = rows_per_block(n * m, d) if rows == n else 1  # whole entries per block
    for b in range(0, entries_all, entries):
        yj = ys[b : b + entries, None, :, :]  # (B', 1, M, D)
        for i in range(0, n, rows):
            xi = xs[b : b + entries, i : i + rows, None, :]  # (B', R, 1, D)
            diff = yj - (1.0 - shrink) * xi if shrink >= 0.5 else (yj - xi) + shrink * xi
            out[b : b + entries, i : i + rows] = (diff * diff).sum(-1)
    return out.reshape(*batch, n, m)


class CorrelatedGaussian:
    r"""Component-wise correlated Gaussians (Poole et al. 2019), optionally cubed (Song & Ermon).

    :math:`x \sim \mathcal N(0, I_d)`, :math:`y = \rho x + \sqrt{1-\rho^2}\,\varepsilon`, so

    .. math:: I(X; Y) = -\frac{d}{2}\log(1 - \rho^2).

    With ``transform="cubic"`` the observed ``y`` is :math:`y^3`, a bijection: the MI and the
    pointwise MI are unchanged, but the critic has to undo the non-linearity.

    **The cubic task at** :math:`y = 0`. The density of :math:`y = z^3` is
    :math:`p_Z(z)/(3z^2)`, which is unbounded at :math:`y = 0` (an integrable singularity, a
    true property of the distribution, not a rounding artefact): there
    :meth:`conditional_log_prob` and :meth:`marginal_log_prob` are ``+inf`` (they are
    finite, if large, at any other value, down to float32's smallest subnormal), and their
    difference is ``nan``. The pointwise MI is finite there (the Jacobians cancel), so use
    :meth:`optimal_critic` for it. :meth:`sample` gives :math:`y = 0` only when
    :math:`|z^3|` underflows, for :math:`|z|` below about :math:`10^{-15}` in float32 and
    :math:`10^{-108}` in float64: with probability below :math:`10^{-15}` per component. A
    bound given ``+inf`` scores refuses them by name (:class:`~mitools.bounds.check_finite`).

    Args:
        dim: number of components :math:`d` (``dim_x = dim_y = d``).
        mi: the mutual information in nats (``>= 0``).
        transform: ``None`` or ``"cubic"``.
        dtype: dtype of the samples, a floating-point ``torch.dtype``.

    **Samples at very high MI per component.** The noise of ``y`` has the scale
    :math:`e^{-I/d}`; once that is below the rounding of ``y`` in ``dtype`` the samples are
    :math:`\rho x` rounded, no longer draws of this distribution (the mean pointwise MI of the
    samples exceeds :math:`I` by up to half a nat per component). A ``RuntimeWarning`` says so
    above 13.9 nats per component in float32 and 34.0 in float64 (noise below 8 units of
    rounding); use float64, or spread the MI over more components.

    Raises:
        ValueError: ``dim`` not an int >= 1, ``mi`` not a finite number >= 0, ``mi / dim``
            above 354 nats per component (where :math:`1 - \rho^2` leaves
            float64), or an unknown ``transform``.
        TypeError: ``dtype`` not a floating-point ``torch.dtype``.

    Example:
        >>> import torch
        >>> task = CorrelatedGaussian(dim=20, mi=4.0)
        >>> x, y = task.sample(64, generator=torch.Generator().manual_seed(0))
        >>> x.shape, y.shape, task.mutual_information()
        (torch.Size([64, 20]), torch.Size([64, 20]), 4.0)
        >>> task.optimal_critic(x, y).shape
        torch.Size([64, 64])
    """

    def __init__(
        self,
        dim: int,
        mi: float,
        transform: str | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        mi, dim = check_number("mi", mi, 0, strict=False), check_int("dim", dim)
        if mi / dim > MAX_MI_PER_COMPONENT:
            # 1 - rho^2 = e^{-2 mi / dim} underflowed: the densities failed with "math domain
            # error" and the lautum information with a ZeroDivisionError
            raise ValueError(
                f"CorrelatedGaussian: mi / dim must be at most {MAX_MI_PER_COMPONENT:g} nats per "
                f"component, got mi={mi:g} over dim={dim} ({mi / dim:.6g} per component): "
                "beyond, 1 - rho^2 = exp(-2 mi / dim) is not a float64, so the densities cannot "
                "be computed; spread the MI over more components"
            )
        self.rho = rho_for_mi(mi, dim)
        if transform not in (None, "cubic"):
            raise ValueError(f"transform must be None or 'cubic', got {transform!r}")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(
                "CorrelatedGaussian: dtype must be a floating-point torch.dtype such as "
                f"torch.float64, got {dtype!r} ({type(dtype).__name__})"
            )
        self.dim = dim
        self.mi = float(mi)
        self.transform = transform
        self.dtype = dtype
        resolved = _resolved_mi_per_component(dtype)
        if mi / dim > resolved:
            advice = ("more components" if dtype == torch.float64
                      else "dtype=torch.float64 or more components")
            warnings.warn(
                f"CorrelatedGaussian: {mi / dim:.4g} nats per component is above the "
                f"{resolved:.1f} that {dtype} samples resolve: the noise of y (scale "
                f"exp(-mi / dim) = {math.exp(-mi / dim):.3g}) falls below the rounding of y, "
                "so the samples are rho * x rounded and do not carry the stated MI (their mean "
                f"pointwise MI is up to 0.5 nats per component higher); use {advice}",
                RuntimeWarning, stacklevel=2)

    @property
    def dim_x(self) -> int:
        """Dimension of ``x``."""
        return self.dim

    @property
    def dim_y(self) -> int:
        """Dimension of ``y``."""
        return self.dim

    def mutual_information(self) -> float:
        """The true mutual information in nats."""
        return self.mi

    def __repr__(self) -> str:
        t = "" if self.transform is None else f", transform={self.transform!r}"
        if self.dtype != torch.float32:
            t += f", dtype={self.dtype}"
        return f"CorrelatedGaussian(dim={self.dim}, mi={self.mi}{t})"

    def sample(
        self, n: int, generator: torch.Generator | int | None = None,
        device: torch.device | str | int | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Draw ``n`` joint samples.

        Args:
            n: number of samples.
            generator: a ``torch.Generator``, an int seed (in :math:`[-2^{63}, 2^{64})`, as
                ``torch.Generator.manual_seed`` takes), or ``None`` (global RNG).
            device: where the samples are drawn: by default the generator's device (the CPU
                for an int seed or ``None``); an int seed seeds a generator there. The same
                seed draws different numbers on a CPU and on a GPU.

        Returns:
            ``(x, y)``, each of shape ``(n, dim)``, on ``device``.

        Raises:
            ValueError: a generator on another device than ``device`` (both named).
        """
        name = f"{type(self).__name__}.sample"
        n = check_int(f"{name}: n", n)
        if device is None:
            where = generator.device if isinstance(generator, torch.Generator) else None
        else:
            # an int is a CUDA index (torch.device(0) asks the accelerator, failing without one)
            where = torch.device(f"cuda:{device}" if isinstance(device, int) else device)
            if where.type == "cuda" and where.index is None:
                where = torch.device("cuda", torch.cuda.current_device())
        g = _generator(generator, where, name=f"{name}: generator")
        if g is not None and where is not None and g.device != where:
            raise ValueError(
                f"{name}: the generator is on {g.device} but device={str(where)!r}; pass a "
                f"generator on {where} (torch.Generator(device={str(where)!r})) or an int seed")
        x = torch.randn(n, self.dim, generator=g, dtype=self.dtype, device=where)
        eps = torch.randn(n, self.dim, generator=g, dtype=self.dtype, device=where)
        # sqrt(1 - rho^2) = e^{-I/d}, without the cancellation of 1 - rho**2 (rho rounds
        # to 1 above ~17 nats per dimension, where that noise became 0)
        y = self.rho * x + math.exp(-self.mi / self.dim) * eps
        if self.transform == "cubic":
            y = y**3
        return x, y

    def _latent_y(self, y: Tensor) -> Tensor:
        if self.transform == "cubic":
            return torch.sign(y) * y.abs().pow(1.0 / 3.0)
        return y

    def optimal_critic(self, x: Tensor, y: Tensor) -> Tensor:
        r"""Scores of the pointwise MI for every pair, ``(..., N, M)``.

        .. math::

            f^*(x, y) = \sum_k \Big[-\tfrac12\log(1-\rho^2)
                - \frac{(y_k - \rho x_k)^2}{2(1-\rho^2)} + \frac{y_k^2}{2}\Big]

        (for the cubic task, on :math:`y^{1/3}`, so finite at :math:`y = 0`, where the
        cubic task's densities are ``+inf``). InfoNCE, DV, JS and SMILE are optimal at
        :math:`f^*` (up to a constant), NWJ and TUBA with :math:`a = 1` at :math:`f^* + 1`.

        The squared distance :math:`\lVert y - \rho x\rVert^2` is computed from the
        differences, never as an expanded square, so the scores are accurate to a few
        rounding errors at any MI the dtype can represent (the positive pairs at 40 nats per
        dimension in float64 too); the differences are formed in blocks, so the memory is
        that of the ``(..., N, M)`` output.

        Args:
            x: ``(..., N, dim)``, floating point (half precision is computed in float32).
            y: ``(..., M, dim)``, on ``x``'s device.

        Raises:
            TypeError: not a floating-point tensor.
            ValueError: a shape that is not ``(..., n, dim)``, or two devices.
        """
        x, y = self._check_pairs(x, y)
        y = self._latent_y(y)
        one_minus = math.exp(-2.0 * self.mi / self.dim)  # 1 - rho^2, without cancellation
        quad = _pair_squared_distances(x, y, self._one_minus_rho())  # (..., N, M)
        yy = (y * y).sum(-1)[..., None, :]  # (..., 1, M)
        return -0.5 * self.dim * math.log(one_minus) - quad / (2.0 * one_minus) + 0.5 * yy

    def _one_minus_rho(self) -> float:
        """:math:`1 - \\rho = (1 - \\rho^2) / (1 + \\rho)`, without the cancellation of
        ``1 - rho`` (``rho`` rounds to 1 at high MI)."""
        return math.exp(-2.0 * self.mi / self.dim) / (1.0 + self.rho)

    def _check_samples(self, t: Tensor, name: str, min_dim: int) -> Tensor:
        """``t`` checked as samples of this task, half precision widened to float32."""
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of samples, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(
                f"{name} must be floating point (samples of {self!r}), got dtype {t.dtype}"
            )
        if t.dim() < min_dim or t.shape[-1] != self.dim:
            lead = "..., n, " if min_dim == 2 else "..., "
            raise ValueError(f"{name} must have shape ({lead}{self.dim}), got {tuple(t.shape)}")
        return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t

    def _check_pairs(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Both sides checked (:meth:`_check_samples`), on one device."""
        x, y = self._check_samples(x, "x", 2), self._check_samples(y, "y", 2)
        if x.device != y.device:
            raise ValueError(f"x is on {x.device} but y is on {y.device}; put both on one device")
        return x, y

    def _log_jacobian(self, y: Tensor) -> Tensor:
        """``log |dz/dy|`` summed over components, ``(..., M)``: 0, or ``-log(3 z^2)`` if cubed."""
        if self.transform != "cubic":
            return y.new_zeros(y.shape[:-1])
        z = self._latent_y(y)
        return -(math.log(3.0) + 2.0 * torch.log(z.abs())).sum(-1)

    def conditional_log_prob(self, x: Tensor, y: Tensor) -> Tensor:
        r"""The true conditional log-density of every pair, :math:`\log p(y_j \mid x_i)`.

        Shape ``(..., N, M)``.

        .. math::

            \log p(y \mid x) = \sum_k \Big[-\tfrac12 \log\big(2\pi(1-\rho^2)\big)
                - \frac{(y_k - \rho x_k)^2}{2(1-\rho^2)}\Big]

        For the cubic task the density of :math:`y = z^3` carries the Jacobian
        :math:`-\sum_k \log(3 z_k^2)`, which is ``+inf`` where a component :math:`y_k = 0`
        (the density is unbounded there; see the class docstring). A score tensor for
        :func:`mitools.bounds.club`,
        :func:`~mitools.bounds.l1out`, :func:`~mitools.bounds.ba` and
        :func:`~mitools.bounds.doe`: the bounds evaluated at the exact model. As in
        :meth:`optimal_critic`, the squared distance is computed from the differences:
        accurate at any MI the dtype can represent.

        Args:
            x: ``(..., N, dim)``.
            y: ``(..., M, dim)``.

        Example:
            >>> import torch
            >>> task = CorrelatedGaussian(dim=2, mi=1.0, dtype=torch.float64)
            >>> x, y = task.sample(5, generator=0)
            >>> s = task.conditional_log_prob(x, y) - task.marginal_log_prob(y)[None, :]
            >>> torch.allclose(s, task.optimal_critic(x, y))
            True
        """
        x, y = self._check_pairs(x, y)
        z = self._latent_y(y)
        one_minus = math.exp(-2.0 * self.mi / self.dim)
        quad = _pair_squared_distances(x, z, self._one_minus_rho())
        norm = -0.5 * self.dim * math.log(2.0 * math.pi * one_minus)
        return norm - quad / (2.0 * one_minus) + self._log_jacobian(y)[..., None, :]

    def marginal_log_prob(self, y: Tensor) -> Tensor:
        r"""The true marginal log-density :math:`\log p(y_j)` of each row of ``y (..., M, dim)``.

        Returns shape ``(..., M)``. For the cubic task it is ``+inf`` for a row with a
        component :math:`y_k = 0`, where the density of :math:`z^3` is unbounded (see the
        class docstring); :meth:`optimal_critic` stays finite there.

        Example:
            >>> import torch
            >>> cubic = CorrelatedGaussian(dim=1, mi=1.0, transform="cubic")
            >>> cubic.marginal_log_prob(torch.tensor([[0.0], [1.0]]))
            tensor([    inf, -2.5176])
        """
        y = self._check_samples(y, "y", 1)
        z = self._latent_y(y)
        return -0.5 * self.dim * math.log(2.0 * math.pi) - 0.5 * (z * z).sum(-1) + (
            self._log_jacobian(y)
        )

    def entropy_y(self) -> float:
        r"""The differential entropy :math:`H(Y)` in nats, for :func:`mitools.bounds.ba`.

        :math:`\tfrac d2\log(2\pi e)` for the Gaussian task; for the cubic task
        :math:`H(Z^3) = H(Z) + \mathbb E\log|3Z^2|` adds
        :math:`d(\log 3 - \gamma - \log 2)` (:math:`\mathbb E\log|Z| = -(\gamma + \log 2)/2`
        for a standard normal, :math:`\gamma` Euler's constant).

        Example:
            >>> round(CorrelatedGaussian(dim=1, mi=1.0).entropy_y(), 4)
            1.4189
        """
        h = 0.5 * self.dim * math.log(2.0 * math.pi * math.e)
        if self.transform == "cubic":
            h += self.dim * (math.log(3.0) - _EULER_GAMMA - math.log(2.0))
        return h

    def lautum_information(self) -> float:
        r"""The lautum information :math:`L(X;Y) = \mathrm{KL}(p(x)p(y)\,\|\,p(x,y))` in nats.

        .. math:: L = d\Big[\frac{\rho^2}{1-\rho^2} + \tfrac12\log(1-\rho^2)\Big]

        so that :math:`I + L = d\,\rho^2/(1-\rho^2)`, the expectation of CLUB with the true
        conditional (:func:`mitools.bounds.club`). Unchanged by the cubic map.

        Example:
            >>> task = CorrelatedGaussian(dim=20, mi=10.0)
            >>> round(task.mutual_information() + task.lautum_information(), 2)
            34.37
        """
        one_minus = math.exp(-2.0 * self.mi / self.dim)
        return self.dim * (-math.expm1(-2.0 * self.mi / self.dim) / one_minus) - self.mi
