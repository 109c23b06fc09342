r"""Bounds as :class:`torch.nn.Module`\ s, with the state some of them need, and lookup by name.

Every estimator maps a score tensor ``(..., N, M)`` to one value per estimation problem,
shape ``(...)``, exactly like the functions of :mod:`mitools.bounds` it is built on. The
stateless ones (:class:`InfoNCE`, :class:`NWJ`, :class:`DV`, :class:`JS`, :class:`JSD`,
:class:`SMILE`) only hold their hyper-parameters; :class:`MINE` keeps a moving average of the
partition function, :class:`TUBA` and :class:`AlphaInfoNCE` may learn their log-baseline.

Code that accepts "a bound" takes either a name or an object and calls :func:`get_estimator`:

    >>> from mitools.estimators import get_estimator
    >>> get_estimator("smile", clip=1.0)
    SMILE(clip=1.0)
    >>> sorted(available_estimators())[:3]
    ['alpha_infonce', 'dv', 'infonce']
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from mitools import bounds

__all__ = [
    "DV",
    "JS",
    "JSD",
    "MINE",
    "NWJ",
    "SMILE",
    "TUBA",
    "AlphaInfoNCE",
    "Estimator",
    "FunctionalEstimator",
    "InfoNCE",
    "LogBaseline",
    "available_estimators",
    "get_estimator",
]


class Estimator(nn.Module):
    """Base class: a mutual-information bound applied to a score tensor.

    Subclasses implement :meth:`forward`. The attribute ``nats`` says whether the value is
    an MI estimate in nats (``False`` only for :class:`JSD`).

    Args of :meth:`forward`:
        scores: ``(..., N, M)``, ``scores[..., i, j] = f(x_i, y_j)``, positive at ``i + offset``.
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.
        anchors: optional row-side inputs ``(..., N, D)``, used only by learned baselines.

    Returns of :meth:`forward`:
        Tensor of shape ``scores.shape[:-2]``: the value (to maximise).
    """

    name: str = "estimator"
    nats: bool = True

    def forward(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
    ) -> Tensor:
        raise NotImplementedError


class FunctionalEstimator(Estimator):
    """Wraps a function ``fn(scores, *, offset, row_mask, col_mask) -> Tensor`` as an estimator.

    Args:
        fn: a bound with the signature of :func:`mitools.bounds.infonce`.
        name: a label for ``repr`` and logs.
        nats: whether the value is an MI estimate in nats.

    Example:
        >>> import torch
        >>> from mitools import bounds
        >>> FunctionalEstimator(bounds.dv)(torch.zeros(3, 3))
        tensor(0.)
    """

    def __init__(self, fn: Callable[..., Tensor], name: str | None = None, nats: bool = True):
        super().__init__()
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or str(getattr(fn, "__name__", "custom"))
        self.nats = nats

    def forward(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
    ) -> Tensor:
        return self.fn(scores, offset=offset, row_mask=row_mask, col_mask=col_mask)

    def extra_repr(self) -> str:
        return f"fn={self.name}"


class _Stateless(Estimator):
    """An estimator that only forwards to one function of :mod:`mitools.bounds`."""

    _fn: Callable[..., Tensor]

    def forward(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
    ) -> Tensor:
        return type(self)._fn(scores, offset=offset, row_mask=row_mask, col_mask=col_mask)


class InfoNCE(_Stateless):
    """InfoNCE / CPC bound, see :func:`mitools.bounds.infonce`.

    Example:
        >>> import torch
        >>> InfoNCE()(torch.zeros(2, 5, 5)).shape
        torch.Size([2])
    """

    name = "infonce"
    _fn = staticmethod(bounds.infonce)


class NWJ(_Stateless):
    """NWJ / f-MINE bound, see :func:`mitools.bounds.nwj`.

    Example:
        >>> import torch
        >>> NWJ()(torch.ones(4, 4))
        tensor(0.)
    """

    name = "nwj"
    _fn = staticmethod(bounds.nwj)


class DV(_Stateless):
    """Donsker-Varadhan bound with its plain (biased) gradient, see :func:`mitools.bounds.dv`.

    Example:
        >>> import torch
        >>> DV()(torch.zeros(4, 4))
        tensor(0.)
    """

    name = "dv"
    _fn = staticmethod(bounds.dv)


class JS(_Stateless):
    """NWJ-valued estimate with Jensen-Shannon gradients, see :func:`mitools.bounds.js`.

    Example:
        >>> import torch
        >>> JS()(torch.zeros(4, 4))
        tensor(0.)
    """

    name = "js"
    _fn = staticmethod(bounds.js)


class JSD(_Stateless):
    """Jensen-Shannon objective of Deep InfoMax (not nats), see :func:`mitools.bounds.jsd`.

    Example:
        >>> import torch
        >>> JSD().nats
        False
    """

    name = "jsd"
    nats = False
    _fn = staticmethod(bounds.jsd)


class SMILE(Estimator):
    """Clipped DV value with JS gradients, see :func:`mitools.bounds.smile`.

    Args:
        clip: :math:`\\tau > 0`, or ``None`` for no clipping (DV on a JS-trained critic).

    Example:
        >>> import torch
        >>> SMILE(clip=5.0)(torch.zeros(4, 4))
        tensor(0.)
    """

    name = "smile"

    def __init__(self, clip: float | None = 5.0):
        super().__init__()
        if clip is not None and (
            isinstance(clip, bool) or not isinstance(clip, (int, float)) or not clip > 0
        ):
            raise ValueError(f"SMILE: clip must be a positive number or None, got {clip!r}")
        self.clip = None if clip is None or math.isinf(clip) else float(clip)

    def forward(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
    ) -> Tensor:
        return bounds.smile(
            scores, self.clip, offset=offset, row_mask=row_mask, col_mask=col_mask
        )

    def extra_repr(self) -> str:
        return f"clip={self.clip}"


class MINE(Estimator):
    r"""MINE: the DV value with the bias-corrected gradient of Belghazi et al. (2018, eq. 12).

    The gradient of the log-partition term :math:`\log \mathbb{E}_q[e^{S}]` is estimated by
    :math:`\mathbb{E}_q[e^{S}\nabla S] / \bar Z`, where :math:`\bar Z` is an exponential moving
    average of the batch partition estimates. The average is kept in log space,

    .. math::

        \log \bar Z \leftarrow \operatorname{logaddexp}\big(\log\beta + \log \bar Z,\;
            \log(1-\beta) + \operatorname{lme}_{\mathcal{O}}(S)\big),

    so scores of any magnitude are safe. The returned value is always the DV estimate of the
    batch; only the gradient differs. The average is updated in training mode when gradients
    are enabled; in evaluation mode MINE returns plain DV.

    Args:
        momentum: :math:`\beta \in [0, 1)`, the weight of the past in the moving average
            (``0`` recovers DV's gradient).

    Example:
        >>> import torch
        >>> mine = MINE(momentum=0.9)
        >>> scores = torch.randn(8, 8, requires_grad=True)
        >>> value = mine(scores)
        >>> value.backward()
        >>> bool(torch.isfinite(mine.log_partition_ema).all())
        True
    """

    name = "mine"
    log_partition_ema: Tensor
    initialized: Tensor

    def __init__(self, momentum: float = 0.99):
        super().__init__()
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)):
            raise TypeError(f"MINE: momentum must be a float, got {type(momentum).__name__}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"MINE: momentum must lie in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)
        self.register_buffer("log_partition_ema", torch.zeros(()))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    def reset(self) -> None:
        """Forget the moving average (e.g. before training on a new task)."""
        self.log_partition_ema = torch.zeros((), device=self.log_partition_ema.device)
        self.initialized.fill_(False)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        key = prefix + "log_partition_ema"
        if key in state_dict:  # the average's shape follows the problems it was fitted on
            self.log_partition_ema = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args)

    def forward(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
    ) -> Tensor:
        p = bounds._prepare(scores, offset, row_mask, col_mask, "MINE")
        joint = bounds._row_mean(p.positive, p)
        log_z = bounds._lme_negatives(p.scores, p)  # (...)
        value = joint - log_z
        if not (self.training and torch.is_grad_enabled()):
            return value
        batch = log_z.detach()
        if not bool(self.initialized):
            ema = batch.clone()
        else:
            if self.log_partition_ema.shape != batch.shape:
                raise ValueError(
                    f"MINE: the moving average was built for problems of shape "
                    f"{tuple(self.log_partition_ema.shape)} but the scores give shape "
                    f"{tuple(batch.shape)}; call reset() to start a new average"
                )
            past = self.log_partition_ema.to(batch.dtype)
            ema = torch.logaddexp(
                past + math.log(self.momentum) if self.momentum > 0 else past.new_full(
                    past.shape, -math.inf
                ),
                batch + math.log1p(-self.momentum),
            )
        self.log_partition_ema = ema
        self.initialized.fill_(True)
        # d/dθ exp(log_z - log_ema) = (E_q[e^S ∇S] / E_q[e^S]) * exp(log_z - log_ema)
        #                           = E_q[e^S ∇S] / ema          (Belghazi et al. eq. 12)
        surrogate = joint - torch.exp(log_z - ema)
        return value.detach() + (surrogate - surrogate.detach())

    def extra_repr(self) -> str:
        return f"momentum={self.momentum}"


class LogBaseline(nn.Module):
    r"""A log-baseline :math:`a_i` for :class:`TUBA` and :class:`AlphaInfoNCE`.

    Args:
        baseline: ``"constant"`` for one learnable scalar (initialised at ``init``), a float
            for a fixed value, or an ``nn.Module`` mapping row-side inputs ``(..., N, D)`` to
            ``(..., N)`` or ``(..., N, 1)`` (a learned :math:`a(x)`).
        init: initial value of the learnable constant.

    Example:
        >>> import torch
        >>> LogBaseline("constant")(torch.zeros(2, 5, 5)).shape
        torch.Size([2, 5])
    """

    def __init__(self, baseline: str | float | nn.Module = "constant", init: float = 0.0):
        super().__init__()
        self.constant: nn.Parameter | None = None
        self.fixed: float | None = None
        self.network: nn.Module | None = None
        if isinstance(baseline, nn.Module):
            self.network = baseline
        elif isinstance(baseline, str):
            if baseline != "constant":
                raise ValueError(
                    f"baseline must be 'constant', a float or an nn.Module, got {baseline!r}"
                )
            self.constant = nn.Parameter(torch.tensor(float(init)))
        elif isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
            self.fixed = float(baseline)
        else:
            raise TypeError(
                "baseline must be 'constant', a float or an nn.Module, got "
                f"{type(baseline).__name__}"
            )

    def forward(self, scores: Tensor, anchors: Tensor | None = None) -> Tensor:
        """Return the log-baseline of every row, shape ``scores.shape[:-1]``."""
        rows = scores.shape[:-1]
        if self.network is not None:
            if anchors is None:
                raise ValueError(
                    "a learned baseline network needs the row-side inputs: pass anchors=x "
                    f"with shape (..., N, D) matching the rows of scores {tuple(scores.shape)}"
                )
            out = self.network(anchors)
            if out.dim() == len(rows) + 1 and out.shape[-1] == 1:
                out = out.squeeze(-1)
            if out.shape[-1] != rows[-1]:
                raise ValueError(
                    f"the baseline network returned shape {tuple(out.shape)}; expected "
                    f"(..., N) or (..., N, 1) with N = {rows[-1]}"
                )
            return out
        if self.constant is not None:
            return self.constant.to(scores.dtype).expand(rows)
        assert self.fixed is not None
        return scores.new_full(rows, self.fixed)


class TUBA(Estimator):
    """TUBA with a fixed, learnable or network log-baseline, see :func:`mitools.bounds.tuba`.

    Args:
        baseline: see :class:`LogBaseline`. ``"constant"`` learns one scalar jointly with the
            critic (maximise the value with respect to both).

    Example:
        >>> import torch
        >>> TUBA(baseline=0.0)(torch.zeros(4, 4))
        tensor(0.)
    """

    name = "tuba"

    def __init__(self, baseline: str | float | nn.Module = "constant"):
        super().__init__()
        self.log_baseline = LogBaseline(baseline)

    def forward(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
    ) -> Tensor:
        a = self.log_baseline(scores, anchors)
        return bounds.tuba(scores, a, offset=offset, row_mask=row_mask, col_mask=col_mask)


class AlphaInfoNCE(Estimator):
    """Interpolated InfoNCE/TUBA bound, see :func:`mitools.bounds.alpha_infonce`.

    Args:
        alpha: interpolation weight in (0, 1); small values (0.01) raise the ceiling.
        baseline: see :class:`LogBaseline`.

    Example:
        >>> import torch
        >>> AlphaInfoNCE(alpha=0.5, baseline=0.0)(torch.zeros(4, 4))
        tensor(0.)
    """

    name = "alpha_infonce"

    def __init__(self, alpha: float = 0.01, baseline: str | float | nn.Module = "constant"):
        super().__init__()
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
            raise ValueError(
                f"AlphaInfoNCE: alpha must lie in the open interval (0, 1), got {alpha!r}"
            )
        self.alpha = float(alpha)
        self.log_baseline = LogBaseline(baseline)

    def forward(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
    ) -> Tensor:
        a = self.log_baseline(scores, anchors)
        return bounds.alpha_infonce(
            scores, a, self.alpha, offset=offset, row_mask=row_mask, col_mask=col_mask
        )

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


_REGISTRY: dict[str, Callable[..., Estimator]] = {
    "infonce": InfoNCE,
    "nwj": NWJ,
    "dv": DV,
    "mine": MINE,
    "tuba": TUBA,
    "js": JS,
    "jsd": JSD,
    "smile": SMILE,
    "alpha_infonce": AlphaInfoNCE,
}


def available_estimators() -> list[str]:
    """Names accepted by :func:`get_estimator`.

    Example:
        >>> "infonce" in available_estimators()
        True
    """
    return list(_REGISTRY)


def get_estimator(bound: str | Estimator | Callable[..., Tensor], **kwargs: Any) -> Estimator:
    """Resolve a bound given by name, as an :class:`Estimator`, or as a function.

    Args:
        bound: a name from :func:`available_estimators` (case-insensitive, ``-`` and ``_``
            alike), an :class:`Estimator` (returned as is), or a function with the signature of
            :func:`mitools.bounds.infonce` (wrapped in :class:`FunctionalEstimator`).
        **kwargs: constructor arguments for a named estimator, e.g. ``clip=1.0`` for SMILE.

    Returns:
        An :class:`Estimator`.

    Raises:
        ValueError: unknown name (the message lists the known ones), or keyword arguments
            given with an object.

    Example:
        >>> get_estimator("alpha-infonce", alpha=0.5)
        AlphaInfoNCE(
          alpha=0.5
          (log_baseline): LogBaseline()
        )
    """
    if isinstance(bound, Estimator):
        if kwargs:
            raise ValueError(
                f"keyword arguments {sorted(kwargs)} only apply to a bound given by name; "
                f"got the object {bound!r}"
            )
        return bound
    if isinstance(bound, str):
        key = bound.strip().lower().replace("-", "_")
        if key not in _REGISTRY:
            close = difflib.get_close_matches(key, list(_REGISTRY), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"unknown bound {bound!r}; choose one of {sorted(_REGISTRY)}.{hint}"
            )
        return _REGISTRY[key](**kwargs)
    if callable(bound):
        if kwargs:
            raise ValueError(f"keyword arguments {sorted(kwargs)} do not apply to a function")
        return FunctionalEstimator(bound)
    raise TypeError(
        f"bound must be a name, an Estimator or a function, got {type(bound).__name__}"
    )
