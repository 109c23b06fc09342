"""Scoring: how a critic is evaluated on blocks of position pairs.

The critic's declared capability decides: a *separable* critic (``critic.separable``, and
``critic=None``, the plain dot product) is asked once for its factors ``u = φ(x)`` per
``x`` position and ``v = ψ(y)`` per ``y`` position (:meth:`~mitools.critics.Critic.factorise`),
and a block's scores are one batched matmul of factors; the fused paths never form the scores
at all. Any other critic is called as a black box on each block. Scores are formed in float32
or higher whatever the features' dtype.

For an upper bound the critic (the conditional density :math:`q`) must not be trained on the
bound: a ``Scorer`` built with ``detach_parameters=True`` evaluates it with its parameters
detached (:func:`torch.func.functional_call`), so the bound's gradient reaches the features
only.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from mitools.critics.base import check_factors, check_scores, dot_scores
from mitools.local.grid import channel_hint

__all__ = ["Scorer", "critic_name"]


class _Method(nn.Module):
    """A critic's method as a module's ``forward``, for :func:`torch.func.functional_call`."""

    def __init__(self, critic: nn.Module, method: str):
        super().__init__()
        self.critic = critic
        self.method = method

    def forward(self, *args: Tensor) -> Any:
        return _invoke(self.critic, self.method, args)


def _invoke(critic: Any, method: str, args: tuple[Tensor, ...]) -> Any:
    """``critic(*args)`` for ``"forward"`` (hooks included; any callable), else the method."""
    return critic(*args) if method == "forward" else getattr(critic, method)(*args)


def critic_name(critic: Any) -> str:
    """A critic as messages name it: the class of a module or of a callable object, the name
    of a plain function (not ``"function"``), ``"critic=None"`` for the dot product.

    Example:
        >>> def my_critic(x, y):
        ...     return x @ y.mT
        >>> critic_name(my_critic), critic_name(None)
        ('my_critic (a function)', 'critic=None')
    """
    if critic is None:
        return "critic=None"
    if isinstance(critic, nn.Module):
        return type(critic).__name__
    name = getattr(critic, "__name__", None)
    if isinstance(name, str) and not isinstance(critic, type):
        return f"{name} (a {type(critic).__name__})"
    return type(critic).__name__


class Scorer:
    """A critic seen through its capabilities.

    Args:
        critic: an ``nn.Module`` or callable ``f(x (..., N, Cx), y (..., M, Cy)) -> (..., N, M)``,
            or ``None`` for the dot product :math:`x^\\top y`.
        detach_parameters: evaluate the critic with its parameters detached (no gradient
            reaches them through these scores).
    """

    def __init__(
        self, critic: Callable[[Tensor, Tensor], Tensor] | None, detach_parameters: bool = False
    ):
        self.critic = critic
        self.separable = critic is None or bool(getattr(critic, "separable", False))
        self.detach_parameters = detach_parameters and isinstance(critic, nn.Module)

    def _call(self, method: str, *args: Tensor) -> Any:
        """``critic.method(*args)``, with detached parameters when so built.

        Raises:
            TypeError: the critic failed on features of a floating dtype that none of its
                floating parameters has (a module of the user's own, float32, given bfloat16
                or float64 features: torch said only "mat1 and mat2 must have the same
                dtype"); the message names both dtypes.
        """
        assert self.critic is not None
        try:
            if not self.detach_parameters:
                return _invoke(self.critic, method, args)
            assert isinstance(self.critic, nn.Module)
            params = {f"critic.{n}": p.detach() for n, p in self.critic.named_parameters()}
            return torch.func.functional_call(_Method(self.critic, method), params, args)
        except RuntimeError as err:
            self._raise_dtype_mismatch(args, err)
            raise

    def _raise_dtype_mismatch(self, args: tuple[Tensor, ...], err: RuntimeError) -> None:
        """Re-raise ``err`` as a ``TypeError`` naming the dtypes when the features' dtype is
        none of the critic's floating parameters' (otherwise return: ``err`` stands)."""
        if not isinstance(self.critic, nn.Module) or isinstance(err, torch.OutOfMemoryError):
            return
        if "type" not in str(err):  # torch's dtype errors: "dtype", "scalar type", "Input type"
            return
        params = sorted({str(p.dtype) for p in self.critic.parameters() if p.is_floating_point()})
        features = sorted({str(a.dtype) for a in args if a.is_floating_point()})
        if not params or set(features) <= set(params):
            return
        wanted = params[0] if len(params) == 1 else None
        fix = (f"cast the features to {wanted} (x.to({wanted}), y.to({wanted})) or the critic "
               f"to theirs (critic.to({features[0]}))" if wanted and len(features) == 1 else
               "give the critic and the features one dtype")
        half = {"torch.float16", "torch.bfloat16"}
        autocast = (", or run the forward pass under torch.autocast" if set(features) <= half
                    else "")
        raise TypeError(
            f"the critic {self.name} failed on features of dtype {', '.join(features)} while its "
            f"parameters are {', '.join(params)} (torch: {err}). mitools' critics take "
            "features of any floating dtype, but a critic of your own computes in its own: "
            f"{fix}{autocast}"
        ) from err

    @property
    def name(self) -> str:
        """The critic in messages: its class name for a module (``"SeparableCritic"``), its own
        name for a function (``"my_critic (a function)"``), ``"critic=None"`` for the dot
        product."""
        return critic_name(self.critic)

    def channels(self) -> tuple[int | None, int | None]:
        """The channels the critic declares for ``x`` and ``y`` (``None``: undeclared)."""
        dims = [getattr(self.critic, f"dim_{side}", None) for side in ("x", "y")]
        return tuple(  # type: ignore[return-value]
            int(d) if isinstance(d, numbers.Integral) and not isinstance(d, bool) else None
            for d in dims
        )

    def check_dot_product(self, cx: int, cy: int, patterns: tuple[str, str], shapes: Any,
                          axes: tuple[tuple[str, ...], tuple[str, ...]]) -> None:
        """``critic=None`` needs as many channels on both sides. When the other side's channel
        count sits at another dimension of a grid (channels-last input read as channels-first,
        say), the message suggests that pattern; otherwise a critic that maps ``Cx`` to
        ``Cy`` channels."""
        if self.critic is None and cx != cy:
            hint = (channel_hint(tuple(shapes[0]), axes[0], cy).replace("; the", "the", 1)
                    .replace(" use pattern", " use x_pattern")
                    or channel_hint(tuple(shapes[1]), axes[1], cx).replace("; the", "the", 1)
                    .replace(" use pattern", " use y_pattern"))
            advice = (f"{hint}" if hint else
                      f"if the channels differ, pass a critic that takes Cx={cx} and Cy={cy} "
                      f"channels, e.g. critic=mitools.SeparableCritic({cx}, {cy})")
            raise ValueError(
                f"critic=None scores the dot product x·y, which needs as many channels on both "
                f"sides; got Cx={cx} and Cy={cy} (x of shape {tuple(shapes[0])} with x_pattern "
                f"{patterns[0]!r}, y of shape {tuple(shapes[1])} with y_pattern "
                f"{patterns[1]!r}): {advice}"
            )

    def factors(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """The factors ``u (P, N, E)``, ``v (Q, M, E)`` of position-major features."""
        if self.critic is None:
            return x, y
        return check_factors(self._call("factorise", x, y), x, y, self.name)

    def score(self, x: Tensor, y: Tensor) -> Tensor:
        """Scores ``(k, N, M)`` of a block: ``x (k|1, N, .)`` against ``y (k|1, M, .)``, given as
        factors for a separable critic, as features otherwise."""
        if self.separable:
            return dot_scores(x, y)
        assert self.critic is not None
        if x.shape[0] == 1 and y.shape[0] == 1:  # one problem: the critic's plain call
            x, y, lift = x[0], y[0], True
        else:
            lift = False
        # the critic's scores checked: (..., N, M), the inputs' leading dimensions broadcast
        leading = tuple(torch.broadcast_shapes(x.shape[:-2], y.shape[:-2]))
        scores = check_scores(self._call("forward", x, y), x, y, self.name, leading,
                              note="; the local losses call it on blocks of (position pairs, "
                              "samples, channels)" if x.dim() > 2 else "")
        if lift:
            scores = scores[None]
        return scores.to(torch.promote_types(scores.dtype, torch.float32))

    def score_pairs(self, x: Tensor, y: Tensor) -> Tensor:
        """Elementwise pairs ``x (k, N, .)``, ``y (k, N, .)`` -> ``(k, N)``."""
        if self.separable:
            dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)
            return (x.to(dtype) * y.to(dtype)).sum(-1)
        return self.score(x[..., None, :], y[..., None, :])[..., 0, 0]
