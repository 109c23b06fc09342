r"""Separable critics: a dot product of embeddings, :math:`g(x)^\top h(y) / T`, and bilinear."""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mitools.critics.base import Critic, _check_widths, _no_autocast, dot_scores, mlp
from mitools.option_checks import check_flag, check_int, check_number

__all__ = ["BilinearCritic", "SeparableCritic"]


def _differs(buffer: Tensor, value: float) -> bool:
    """Whether ``buffer`` (one number) holds another value than ``value`` rounded to its
    dtype (``False`` on the meta device, which holds no value)."""
    return not buffer.is_meta and float(buffer) != float(torch.tensor(value, dtype=buffer.dtype))


def _level_outside_torch() -> int:
    """The ``stacklevel`` of the first frame, from the caller of this function, outside this
    file and torch's ``nn.Module`` (whose ``load_state_dict`` recurses through submodules)."""
    frame, level = sys._getframe(1), 1
    inside = (__file__, nn.modules.module.__file__)
    while frame.f_back is not None and frame.f_code.co_filename in inside:
        frame, level = frame.f_back, level + 1
    return level


class _FloorWayBack(torch.autograd.Function):
    """``max(x, floor)``, whose gradient also reaches an ``x`` below the floor where a descent
    step would raise it (a negative gradient): a learned log-temperature held at its floor
    can leave it again (``torch.clamp`` would give it no gradient there, for good)."""

    generate_vmap_rule = True  # torch.func.vmap over a critic: the rule is elementwise

    @staticmethod
    def forward(x: Tensor, floor: float) -> Tensor:
        return x.clamp(min=floor)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        x, floor = inputs
        ctx.save_for_backward(x)
        ctx.floor = floor

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        passes = (x > ctx.floor) | (grad < 0)
        return torch.where(passes, grad, torch.zeros_like(grad)), None


class SeparableCritic(Critic):
    r"""Separable critic :math:`f(x, y) = g(x)^\top h(y) / T`.

    Args:
        dim_x: features of ``x``.
        dim_y: features of ``y``.
        hidden: hidden widths of both encoders :math:`g` and :math:`h`.
        embed_dim: dimension of the embeddings that are compared.
        cosine: L2-normalise the embeddings (a cosine similarity), as in CLIP / SimCLR.
        temperature: :math:`T > 0`; with ``cosine=True`` a small value (0.1) is usual. The
            scores are computed in float32 or higher, but the factor :math:`g(x) / T`
            (:meth:`factorise`) is held in the critic's dtype: in float16 an entry above 65504
            overflows (with ``cosine=True``, any :math:`T` below about :math:`1.5 \cdot
            10^{-5}`, scores of :math:`10^5`), and the bounds refuse the inf or NaN scores; use a
            float32 or bfloat16 critic for such scores.
        learn_temperature: learn :math:`\log T` as a parameter.
        min_temperature: the floor of a learned temperature (``0`` for none): the scores use
            :math:`\max(T, T_{\min})`, as CLIP clips its learned logit scale at 100
            (:math:`T_{\min} = 0.01`, the default), so that a cosine critic's scores stay
            within :math:`\pm 1/T_{\min}`. Without it, InfoNCE lowers a learned :math:`T`
            for as long as the positives are separable, and the scores grow without bound.
            The gradient of :math:`\log T` still reaches the parameter while it sits below
            the floor when it would raise it, so it can come back; unlike open_clip, which
            clamps the parameter after each step, the parameter itself is not clamped, so an
            optimiser's momentum (Adam's) can carry it below the floor, from where it must
            climb back before :math:`T` rises again. Forward-mode AD (``torch.func.jvp``,
            ``jacfwd``) with respect to a learned, floored :math:`\log T` raises
            ``NotImplementedError`` (``min_temperature=0`` allows it). The floor is a
            setting of the module, not part of its ``state_dict``: a loaded state takes the
            loading critic's. Ignored when the temperature is fixed. Loading a
            ``state_dict`` saved before this option existed whose learned :math:`T` lies
            below the floor warns (``RuntimeWarning``): its scores were those of that
            :math:`T`; ``min_temperature=0`` keeps them.
        activation: the non-linearity class of the encoders (see :func:`~mitools.critics.mlp`).

    Raises:
        ValueError: at construction, a dimension or width that is not an int >= 1, a temperature
            that is not a finite number > 0, a ``min_temperature`` that is not a finite number
            >= 0 or (with ``learn_temperature``) above ``temperature``, or a flag that is not
            ``True`` or ``False``;
            at the call, as every :class:`~mitools.critics.Critic` (inputs of the wrong shape
            or device).
        TypeError: at the call, non-tensor or non-floating-point inputs.

    Example:
        >>> import torch
        >>> critic = SeparableCritic(20, 20, hidden=(64,), embed_dim=16)
        >>> critic(torch.randn(8, 20), torch.randn(8, 20)).shape
        torch.Size([8, 8])
        >>> critic(torch.randn(3, 8, 20), torch.randn(3, 5, 20)).shape  # leading batch dims
        torch.Size([3, 8, 5])
    """

    log_temperature: Tensor  # a parameter when learned, else a buffer
    # the floor of a learned temperature: this class default (none) is what a critic pickled
    # before the floor existed (torch.save(critic)) keeps, as it had none
    min_temperature: float = 0.0
    # 2: min_temperature exists (a learned temperature of a version-1 state had no floor)
    _version = 2

    def __init__(
        self,
        dim_x: int,
        dim_y: int,
        hidden: Sequence[int] = (256, 256),
        embed_dim: int = 32,
        cosine: bool = False,
        temperature: float = 1.0,
        learn_temperature: bool = False,
        activation: type[nn.Module] = nn.ReLU,
        min_temperature: float = 0.01,
    ):
        super().__init__()
        temperature = check_number("temperature", temperature, 0)
        cosine = check_flag("cosine", cosine)
        learn_temperature = check_flag("learn_temperature", learn_temperature)
        min_temperature = check_number("min_temperature", min_temperature, 0, strict=False)
        if learn_temperature and temperature < min_temperature:
            raise ValueError(
                f"SeparableCritic: the learned temperature starts at temperature={temperature}, "
                f"below its floor min_temperature={min_temperature}; lower min_temperature "
                "(0 for no floor) or start higher")
        #: the floor of a learned temperature (see ``min_temperature``); 0 for none
        self.min_temperature = min_temperature
        dim_x, dim_y = check_int("dim_x", dim_x), check_int("dim_y", dim_y)
        embed_dim = check_int("embed_dim", embed_dim)
        hidden = _check_widths(hidden)
        self.dim_x, self.dim_y = dim_x, dim_y
        self.g = mlp(dim_x, hidden, embed_dim, activation)
        self.h = mlp(dim_y, hidden, embed_dim, activation)
        self.cosine = cosine
        log_t = torch.tensor(math.log(temperature))
        #: a fixed :math:`\log T` as a Python float (``None`` when learned), the source of the
        #: buffer ``log_temperature`` in whatever dtype the module moves to (a value written
        #: into the buffer, by ``load_state_dict`` or by hand, replaces it at the move)
        self.fixed_log_temperature: float | None = None
        if learn_temperature:
            self.log_temperature = nn.Parameter(log_t)
        else:
            self.fixed_log_temperature = math.log(temperature)
            self.register_buffer("log_temperature", log_t)

    def _apply(self, fn: Any, recurse: bool = True) -> SeparableCritic:
        # a fixed temperature is a hyper-parameter, not a weight: after .double() it is the
        # float64 value of log T, not the float32 rounding it was built with (scores were off
        # by 2e-9 relative, far above float64's rounding)
        fixed = self.fixed_log_temperature
        if fixed is not None and _differs(self.log_temperature, fixed):
            # another temperature since: a loaded state's, or one set by hand (annealed)
            fixed = self.fixed_log_temperature = float(self.log_temperature)
        super()._apply(fn, recurse)
        # refilled only where the move lost the value (a wider dtype, to_empty's garbage): the
        # tensor fn made is kept otherwise, e.g. share_memory()'s shared one
        if fixed is not None and _differs(self.log_temperature, fixed):
            self.log_temperature = torch.full_like(self.log_temperature, fixed)
        return self

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str,
                              local_metadata: dict[str, Any], *args: Any) -> None:
        # a state saved before the floor (version 1) scored with its learned temperature as
        # it was: below the floor, this critic's scores are not the saved critic's
        saved = state_dict.get(prefix + "log_temperature")
        if (local_metadata.get("version") == 1 and self.fixed_log_temperature is None
                and self.min_temperature > 0 and isinstance(saved, Tensor)
                and saved.numel() == 1 and not saved.is_meta
                and float(saved) < math.log(self.min_temperature)):
            warnings.warn(
                f"SeparableCritic: the loaded state (saved before min_temperature existed) "
                f"has a learned temperature of {math.exp(float(saved)):.4g}, below this "
                f"critic's floor min_temperature={self.min_temperature}: its scores use "
                f"{self.min_temperature}, not the saved critic's {math.exp(float(saved)):.4g}; "
                "build it with min_temperature=0 to score as the saved critic did",
                RuntimeWarning, stacklevel=_level_outside_torch())
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)

    def embed(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """The embeddings :math:`g(x)` ``(..., N, E)`` and :math:`h(y)` ``(..., M, E)``."""
        gx, hy = self.g(x), self.h(y)
        if self.cosine:
            gx, hy = F.normalize(gx, dim=-1), F.normalize(hy, dim=-1)
        return gx, hy

    separable = True

    def factorise(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """``u = g(x) / T`` ``(..., N, embed_dim)`` and ``v = h(y)`` ``(..., M, embed_dim)``."""
        self._check_inputs(x, y, broadcast=False)
        gx, hy = self.embed(x, y)
        return gx * torch.exp(-self.effective_log_temperature()).to(gx.dtype), hy

    def effective_log_temperature(self) -> Tensor:
        r""":math:`\log T` as the scores use it, a 0-d tensor: the learned one floored at
        ``log(min_temperature)``; the fixed one as it is."""
        log_t = self.log_temperature
        # learned: no fixed value (not isinstance(nn.Parameter): torch.func.functional_call,
        # and so the local losses' detached critics, pass plain tensors for the parameters)
        if self.fixed_log_temperature is not None or self.min_temperature <= 0:
            return log_t
        return _FloorWayBack.apply(log_t, math.log(self.min_temperature))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        self._check_inputs(x, y)
        return dot_scores(*self.factorise(x, y))


class BilinearCritic(Critic):
    r"""Bilinear critic :math:`f(x, y) = x^\top W y` (Oord et al.'s CPC critic).

    Args:
        dim_x: features of ``x``.
        dim_y: features of ``y``.
        bias: add a learnable scalar (it cancels in InfoNCE and DV, not in NWJ/TUBA/JS).

    Raises:
        ValueError: at construction, a dimension that is not an int >= 1 or a ``bias`` that is
            not ``True`` or ``False``;
            at the call, as every :class:`~mitools.critics.Critic` (inputs of the wrong shape
            or device).
        TypeError: at the call, non-tensor or non-floating-point inputs.

    Example:
        >>> import torch
        >>> BilinearCritic(4, 3)(torch.randn(5, 4), torch.randn(6, 3)).shape
        torch.Size([5, 6])
    """

    def __init__(self, dim_x: int, dim_y: int, bias: bool = True):
        super().__init__()
        dim_x, dim_y = check_int("dim_x", dim_x), check_int("dim_y", dim_y)
        bias = check_flag("bias", bias)
        self.dim_x, self.dim_y = dim_x, dim_y
        self.weight = nn.Parameter(torch.empty(dim_x, dim_y))
        nn.init.normal_(self.weight, std=1.0 / math.sqrt(dim_x * dim_y))  # unit-variance scores
        self.bias = nn.Parameter(torch.zeros(())) if bias else None

    separable = True

    def factorise(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """``u = [x W, 1]`` ``(..., N, dim_y + 1)`` and ``v = [y, bias]`` (without a bias:
        ``u = x W``, ``v = y``), in float32 or higher."""
        self._check_inputs(x, y, broadcast=False)
        with _no_autocast(x.device):  # the critic's own products: not rounded by autocast
            dtype = torch.promote_types(x.dtype, torch.float32)
            x, y = x.to(dtype), y.to(dtype)
            u = torch.matmul(x, self.weight.to(dtype))
            if self.bias is None:
                return u, y
            u = torch.cat([u, u.new_ones((*u.shape[:-1], 1))], dim=-1)
            v = torch.cat([y, self.bias.to(y.dtype).expand(*y.shape[:-1], 1)], dim=-1)
            return u, v

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        self._check_inputs(x, y)
        return dot_scores(*self.factorise(x, y))
