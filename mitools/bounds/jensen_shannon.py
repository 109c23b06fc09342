"""The bounds trained through the Jensen-Shannon objective: JSD, JS and SMILE.

Pure functions of a score tensor; see :mod:`mitools.bounds` for the conventions they share.
:func:`~mitools.bounds.jsd` is the f-GAN / Deep InfoMax objective itself (not nats of MI);
:func:`~mitools.bounds.js` and :func:`~mitools.bounds.smile` report an MI estimate (NWJ's, a
clipped DV's) while their gradient is the objective's, the stop-gradient construction of
Poole et al. (2019) and Song & Ermon (2020).
Like the bounds of :mod:`mitools.bounds.lower`, each is a finisher of per-row statistics
(:mod:`mitools.bounds.rowwise`), shared by every execution path of the local losses.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any

import torch.nn.functional as F
from torch import Tensor

from mitools.bounds._scores import with_gradient_of
from mitools.bounds.lower import NEGATIVES_LSE, _dv, _tuba
from mitools.bounds.rowwise import (
    RowStatistic,
    RowStatistics,
    RowwiseBound,
    Transform,
    _registers,
    rows_mean,
    rows_sum,
)
from mitools.option_checks import check_number

__all__ = ["js", "jsd", "smile", "smile_rowwise"]

#: Sum of softplus over the valid negatives: the Jensen-Shannon objective's marginal term.
NEGATIVES_SOFTPLUS = RowStatistic("sum", "negatives", Transform("softplus"))


def _jsd(st: RowStatistics) -> Tensor:
    joint = rows_mean(-F.softplus(-st.positive), st)
    return joint - rows_sum(st.of(NEGATIVES_SOFTPLUS), st) / st.n_neg


def _with_js_gradient(value: Tensor, st: RowStatistics) -> Tensor:
    """``value`` with the gradient of the Jensen-Shannon objective (stop-gradient)."""
    return with_gradient_of(value, _jsd(st))


def _js(st: RowStatistics) -> Tensor:
    return _with_js_gradient(_tuba(st, 0.0, "js", "exp(lme(S))"), st)  # NWJ on S + 1


JSD = RowwiseBound("jsd", (NEGATIVES_SOFTPLUS,), _jsd)
JS = RowwiseBound("js", (NEGATIVES_LSE, NEGATIVES_SOFTPLUS), _js)


def _check_clip(clip: Any, name: str) -> float | None:
    """SMILE's clip as a Python float or ``None``: a finite number > 0, or ``None`` or
    ``inf`` (no clipping, both returned as ``None``). Numpy reals count, bools do not."""
    if clip is None or (isinstance(clip, numbers.Real) and clip == math.inf):
        return None
    try:
        return check_number(f"{name}: clip", clip, 0)
    except ValueError:
        raise ValueError(f"{name}: clip must be a number > 0, inf or None (no clipping), "
                         f"got {clip!r}") from None


def smile_rowwise(clip: float | None = 5.0) -> RowwiseBound:
    r"""SMILE's :class:`~mitools.bounds.RowwiseBound` for a clip :math:`\tau` (``None`` or
    ``inf``: none).

    Example:
        >>> smile_rowwise(5.0).statistics[0].transform
        Transform(name='clip', param=5.0)
    """
    clip = _check_clip(clip, "smile")
    clipped = (
        NEGATIVES_LSE if clip is None else RowStatistic(
            "logsumexp", "negatives", Transform("clip", float(clip))
        )
    )  # fmt: skip
    # a partial of a module-level function, not a closure: the finisher is held by every
    # SMILE estimator, and a closure could not be pickled (pickle, torch.save of a module,
    # multiprocessing spawn refused SMILE and any LocalMILoss built on it)
    finish = functools.partial(_smile_finish, clipped)
    return RowwiseBound("smile", (clipped, NEGATIVES_SOFTPLUS), finish)


def _smile_finish(clipped: RowStatistic, st: RowStatistics, **_: Any) -> Tensor:
    """SMILE's finisher for the clipped negatives' statistic ``clipped``."""
    return _with_js_gradient(_dv(st, clipped), st)


_SMILE_DEFAULT = smile_rowwise(5.0)


@_registers(JSD)
def jsd(
    scores: Tensor,
    *,
    offset: int = 0,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
) -> Tensor:
    r"""Jensen-Shannon objective of f-GAN and Deep InfoMax (Nowozin et al. 2016; Hjelm et al. 2019).

    .. math::

        \hat J = \frac{1}{K}\sum_i -\operatorname{softplus}(-S_{i,i+o})
            - \frac{1}{|\mathcal{O}|}\sum_{(i,j)\in\mathcal{O}} \operatorname{softplus}(S_{ij}).

    This is a lower bound on :math:`2\,\mathrm{JSD}(p(x,y)\,\|\,p(x)p(y)) - 2\log 2`, **not**
    nats of mutual information (Deep InfoMax's code adds the constant :math:`2\log 2`). Its
    optimal critic is the pointwise mutual information. Use it to *train*; use :func:`js` to
    train with the same gradient while reading an MI estimate.

    Args:
        scores: critic scores ``(..., N, M)``.
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``: the Jensen-Shannon objective (not nats of MI).

    Raises:
        TypeError, ValueError: as every bound (see :mod:`mitools.bounds`): scores that are
            not a floating-point tensor, of fewer than 2 dims or 2 columns, or non-finite
            where unmasked; masks or an offset that do not fit the scores.

    Example:
        >>> import torch
        >>> from mitools.bounds import jsd
        >>> round(float(jsd(torch.zeros(4, 4))), 4)  # -2 log 2 for an uninformative critic
        -1.3863
    """
    return JSD(scores, offset=offset, row_mask=row_mask, col_mask=col_mask)


@_registers(JS)
def js(
    scores: Tensor,
    *,
    offset: int = 0,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
) -> Tensor:
    r"""MI estimate from a critic trained with the Jensen-Shannon objective (Poole et al. 2019).

    Value: :func:`nwj` evaluated on :math:`S + 1`; gradient: that of :func:`jsd`. Built as
    ``nwj(S + 1).detach() + (jsd - jsd.detach())``, so the value is NWJ's to
    the last bit however large the objective.

    The JS objective's optimal critic is the pointwise mutual information (PMI), and NWJ's
    optimal critic is PMI + 1, so the shift makes the value unbiased at the JS optimum. (The
    reference code of Poole et al. reads ``nwj(S)``, which is lower by :math:`e^{-1}` nats at
    that optimum; both are valid lower bounds for every critic.)

    .. math::

        \text{value} = \frac{1}{K}\sum_i S_{i,i+o} + 1
            - \exp\big(\operatorname{lme}_{\mathcal{O}}(S)\big),\qquad
        \nabla = \nabla \hat J_{\text{JS}}.

    Args:
        scores: critic scores ``(..., N, M)``.
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``: the estimate in nats, with JS gradients.

    Raises:
        TypeError, ValueError: as every bound (see :mod:`mitools.bounds`): scores that are
            not a floating-point tensor, of fewer than 2 dims or 2 columns, or non-finite
            where unmasked; masks or an offset that do not fit the scores.

    Example:
        >>> import torch
        >>> from mitools.bounds import js
        >>> js(torch.zeros(4, 4))  # PMI = 0 for independent variables: estimate 0
        tensor(0.)
    """
    return JS(scores, offset=offset, row_mask=row_mask, col_mask=col_mask)


@_registers(_SMILE_DEFAULT)
def smile(
    scores: Tensor,
    clip: float | None = 5.0,
    *,
    offset: int = 0,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
) -> Tensor:
    r"""SMILE: clipped DV estimate on a JS-trained critic (Song & Ermon 2020).

    .. math::

        \text{value} = \frac{1}{K}\sum_i S_{i,i+o}
            - \operatorname{lme}_{\mathcal{O}}\big(\operatorname{clip}(S, -\tau, \tau)\big),
        \qquad \nabla = \nabla \hat J_{\text{JS}}.

    Clipping the negatives' scores to :math:`[-\tau, \tau]` bounds the variance of the
    partition estimate at the price of a bias; :math:`\tau = \infty` (``clip=None``) is DV on
    a JS-trained critic. The positives are not clipped.

    Args:
        scores: critic scores ``(..., N, M)``.
        clip: :math:`\tau > 0`, or ``None`` (or ``inf``) for no clipping. ``5.0`` is the
            usual choice.
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``: the estimate in nats, with JS gradients.

    Raises:
        TypeError, ValueError: as every bound (see :mod:`mitools.bounds`): scores that are
            not a floating-point tensor, of fewer than 2 dims or 2 columns, or non-finite
            where unmasked; masks or an offset that do not fit the scores; a
            ``clip`` that is not a number > 0, ``inf`` or ``None``.

    Example:
        >>> import torch
        >>> from mitools.bounds import smile
        >>> smile(torch.zeros(4, 4), clip=5.0)
        tensor(0.)
    """
    bound = _SMILE_DEFAULT if clip == 5.0 and not isinstance(clip, bool) else smile_rowwise(clip)
    return bound(scores, offset=offset, row_mask=row_mask, col_mask=col_mask)
