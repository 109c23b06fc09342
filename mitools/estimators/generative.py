r"""Generative estimators and FLO as modules (BA, DoE, FLO), and the traits they share.

Built on the functions of :mod:`mitools.bounds.generative` (BA, DoE and FLO through their
row-wise forms, so every execution path of the local losses takes them); the upper bounds
built on the same :class:`GenerativeEstimator` (CLUB, vCLUB, L1Out) are in
``mitools.estimators.upper``. Beside the shared
:class:`~mitools.estimators.Estimator` interface, each declares what it is and what it needs:

* ``direction``: ``"lower"`` (BA, FLO), ``"upper"`` (CLUB, vCLUB, L1Out; under the
  conditions in their docstrings) or ``"neither"`` (DoE);
* ``needs_log_density``: ``True`` when the scores must be log conditional densities
  :math:`\log q(y_j \mid x_i)` from a :class:`~mitools.conditionals.ConditionalDensity`
  rather than an unnormalised critic;
* ``needs_targets``: ``True`` when ``forward`` needs the column-side inputs
  ``targets (..., M, Dy)`` (FLO's per-pair network, DoE's marginal model);
* :meth:`~GenerativeEstimator.learning_objective`: what the *model* (critic or :math:`q`)
  maximises. For BA, CLUB, vCLUB and L1Out that is the conditional log-likelihood, not the
  value; for FLO and DoE it is the value (whose gradient is already the right signal).

Two-player use of an upper bound (Cheng et al. 2020), e.g. to remove the information a
representation ``z = encoder(x)`` holds about a nuisance ``y``::

    club = CLUB()
    q = DiagonalGaussian(dim_z, dim_y)
    # 1) fit q on detached representations (q's optimiser)
    scores = q(z.detach(), y)
    (-club.learning_objective(scores)).backward(); q_opt.step()
    # 2) the encoder minimises the bound (the encoder's optimiser only)
    (task_loss + beta * club(q(z, y))).backward(); enc_opt.step()

In :class:`~mitools.local.LocalMILoss` and :class:`~mitools.local.GlobalMILoss` one call gives
both players' losses (``loss``: the bound, the critic's parameters detached; ``model_loss``:
minus the log-likelihood, the features detached), see :class:`~mitools.local.LocalMIResult`.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import torch
from torch import Tensor, nn

from mitools import bounds
from mitools.bounds import generative as gen
from mitools.estimators.base import Estimator, ProblemIndex, positive_targets
from mitools.option_checks import check_int, check_number

__all__ = ["BA", "FLO", "DoE", "GenerativeEstimator"]


class GenerativeEstimator(Estimator):
    r"""Base of BA, DoE, CLUB, vCLUB, L1Out and FLO: declared traits and the model's objective.

    :meth:`learning_objective` is what the *model* producing the scores (a critic or a
    conditional density :math:`q`) maximises: for BA, CLUB, vCLUB and L1Out the conditional
    log-likelihood of the positives, not the value; for FLO and DoE the value itself (whose
    gradient is already the right signal). An upper bound is used by two players::

        club = CLUB()
        # 1) fit q on detached representations (q's optimiser)
        (-club.learning_objective(q(z.detach(), y))).backward(); q_opt.step()
        # 2) the encoder minimises the bound (the encoder's optimiser only)
        (task_loss + beta * club(q(z, y))).backward(); enc_opt.step()

    In :class:`~mitools.local.LocalMILoss` and :class:`~mitools.local.GlobalMILoss` both
    players come from one call: ``loss`` (the bound, the critic's parameters detached) and
    ``model_loss`` (minus the log-likelihood, the features detached).

    A row-wise estimator (``rowwise`` set: BA, DoE, CLUB, FLO) computes ``forward`` as
    its :meth:`finish` of the row statistics, so the local losses' blocked and attention
    paths give the same values.

    What each declares (see :class:`~mitools.estimators.Estimator`): ``direction``,
    ``"lower"`` (BA, FLO), ``"upper"`` (CLUB, vCLUB, L1Out, under the conditions in their
    docstrings) or ``"neither"`` (DoE), what the value bounds; ``needs_log_density``, whether
    the scores must be log conditional densities :math:`\log q(y_j \mid x_i)` rather than
    an unnormalised critic's (all but FLO); ``needs_targets``, whether ``forward`` needs
    ``targets (..., M, Dy)``, the column-side inputs (FLO's per-pair network, DoE's marginal
    model).
    """

    needs_log_density = True

    def learning_objective(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
        targets: Tensor | None = None,
    ) -> Tensor:
        """What the model producing ``scores`` maximises, shape ``scores.shape[:-2]``.

        The conditional log-likelihood of the positives (:func:`mitools.bounds.log_likelihood`)
        unless a subclass says otherwise.
        """
        return bounds.log_likelihood(scores, offset=offset, row_mask=row_mask, col_mask=col_mask)

    def finish(
        self,
        stats: bounds.RowStatistics,
        *,
        anchors: Tensor | None = None,
        targets: Tensor | None = None,
        problems: ProblemIndex | None = None,
    ) -> Tensor:
        """The value from the row statistics (the row-wise estimators; ``targets``: each row's
        positive ``(..., N, Dy)``)."""
        return super().finish(stats, anchors=anchors, problems=problems)

    def extra_repr(self) -> str:
        return f"direction={self.direction!r}"


class BA(GenerativeEstimator):
    """Barber-Agakov lower bound with a known :math:`H(Y)`, see :func:`mitools.bounds.ba`.

    Row-wise (the positives only): every path of the local losses takes it, scoring only the
    positive pairs.

    Args:
        entropy_y: the differential entropy :math:`H(Y)` in nats (e.g.
            :meth:`mitools.tasks.CorrelatedGaussian.entropy_y`). Without it, use
            :class:`DoE` with a marginal model (no longer a bound).

    Raises:
        ValueError: ``entropy_y`` missing or not a finite number.

    Example:
        >>> import torch
        >>> BA(entropy_y=3.0)(torch.full((4, 4), -2.0))
        tensor(1.)
    """

    name = "ba"
    direction = "lower"
    rowwise = gen.BA

    def __init__(self, entropy_y: float | None = None):
        super().__init__()
        if entropy_y is None:
            raise ValueError(
                "BA needs entropy_y=H(Y) in nats (known for mitools.tasks, e.g. "
                "task.entropy_y()); without it use 'doe' with a marginal model, which is an "
                "estimate but not a bound"
            )
        self.entropy_y = check_number("BA: entropy_y", entropy_y, None)

    def finish(self, stats: bounds.RowStatistics, **_: Any) -> Tensor:
        """:math:`H(Y)` plus the mean positive log-density, from the row statistics."""
        return gen.BA.finish(stats, entropy_y=self.entropy_y)

    def extra_repr(self) -> str:
        return f"entropy_y={self.entropy_y}, direction={self.direction!r}"


class _Marginal(Protocol):
    def log_prob(self, y: Tensor) -> Tensor: ...


class DoE(GenerativeEstimator):
    r"""Difference-of-entropies estimate (not a bound), see :func:`mitools.bounds.doe`.

    Row-wise (the positives only). In the local losses it needs ``marginal`` (they pass the
    column-side features as ``targets``).

    Args:
        marginal: a model of :math:`p(y)` with ``log_prob(targets) -> (..., M)`` (e.g.
            :class:`mitools.conditionals.GaussianMarginal`), trained with the conditional
            (its log-likelihood is part of the gradient). Without it, pass ``log_marginal``
            to :meth:`forward`.

    Raises:
        TypeError: a ``marginal`` without a callable ``log_prob`` (an ``nn.Linear``, say).
        ValueError: in :meth:`forward` (and :meth:`finish`), ``targets`` that are not
            ``(..., M, Dy)`` with one row per column (per row), or a marginal model whose
            ``log_prob`` does not return ``(..., M)``: a squeezed output would give every
            column the same :math:`\log q(y)`.

    Example:
        >>> import torch
        >>> DoE()(torch.full((3, 3), -1.0), log_marginal=torch.full((3,), -2.5))
        tensor(1.5000)
    """

    name = "doe"
    direction = "neither"
    rowwise = gen.DOE

    def __init__(self, marginal: nn.Module | None = None):
        super().__init__()
        if marginal is not None and not callable(getattr(marginal, "log_prob", None)):
            # else the first call escaped as "AttributeError: 'Linear' object has no
            # attribute 'log_prob'", far from the construction that caused it
            raise TypeError(
                f"DoE: marginal must be a model of p(y) with a log_prob(targets) -> (..., M) "
                f"method (e.g. mitools.conditionals.GaussianMarginal) or None, got "
                f"{type(marginal).__name__}"
            )
        self.marginal = marginal
        self.needs_targets = marginal is not None

    def _marginal_log_prob(self, targets: Tensor) -> Tensor:
        """``marginal.log_prob(targets)``: nn.Module's stub types the methods it does not
        declare as Tensor | Module (its __getattr__)."""
        return cast(_Marginal, self.marginal).log_prob(targets)

    def _no_marginal(self) -> ValueError:
        return ValueError(
            "DoE needs the log marginal density of the columns: pass log_marginal "
            "(..., M), or build DoE(marginal=model) and pass targets=y (..., M, Dy) (in "
            "LocalMILoss and GlobalMILoss: DoE(marginal=model))"
        )

    def forward(
        self,
        scores: Tensor,
        *,
        log_marginal: Tensor | None = None,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
        targets: Tensor | None = None,
        problems: ProblemIndex | None = None,
    ) -> Tensor:
        if log_marginal is None:
            if self.marginal is None or targets is None:
                raise self._no_marginal()
            log_marginal = self._log_marginal(
                targets, scores.shape[-1], "M", "one row per column of the scores"
            )
        return bounds.doe(scores, log_marginal, offset=offset, row_mask=row_mask,
                          col_mask=col_mask)  # fmt: skip

    def finish(
        self, stats: bounds.RowStatistics, *, targets: Tensor | None = None, **_: Any
    ) -> Tensor:
        """The estimate from the row statistics and the marginal model's log-density of each
        row's positive ``targets (..., N, Dy)``."""
        if self.marginal is None or targets is None:
            raise self._no_marginal()
        lm = self._log_marginal(targets, stats.positive.shape[-1], "N", "each row's positive")
        return gen.DOE.finish(stats, log_marginal=lm)

    def _log_marginal(self, targets: Tensor, m: int, axis: str, what: str) -> Tensor:
        """The marginal model's ``log q(y)`` of ``targets (..., m, Dy)``, shape ``(..., m)``
        (``axis``, ``what``: how the message names that axis). A 1-D ``targets`` or a model
        output without the ``m`` axis (which would broadcast one value to every column,
        silently) is refused by name."""
        assert self.marginal is not None
        if not isinstance(targets, Tensor) or targets.dim() < 2 or targets.shape[-2] != m:
            got = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
            raise ValueError(
                f"doe: targets has shape {got} but must be (..., {axis}, Dy) with {axis} = {m}, "
                f"{what} (a 1-D y of n samples of one feature is y[:, None])"
            )
        out = self._marginal_log_prob(targets)
        if not isinstance(out, Tensor) or out.dim() == 0 or out.shape[-1] != m:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"doe: marginal.log_prob(targets) returned shape {got} for targets "
                f"{tuple(targets.shape)}; it must be (..., {axis}) with {axis} = {m}, one "
                "log q(y) per row of targets"
            )
        return out

    def learning_objective(self, scores: Tensor, **kwargs: Any) -> Tensor:
        """The DoE value, whose gradient is that of both models' log-likelihoods."""
        return self.forward(scores, **kwargs)


class FLO(GenerativeEstimator):
    r"""FLO lower bound with a learned per-pair term, see :func:`mitools.bounds.flo`.

    The scores are an ordinary critic's (``needs_log_density = False``); the per-pair term
    :math:`u(x_i, y_{i+o})` is, in order of precedence: ``u`` passed to :meth:`forward`;
    ``u_network`` applied to ``anchors`` and the positives among ``targets`` (the paper's
    estimator); or, with neither, tied to the critic, :math:`u = -S_{i,i+o}`. That tie is
    FLO's optimum for a self-normalised critic (:math:`\mathbb E_{y'} e^{g(x, y')} = 1`) and
    gives :math:`1 + \frac1K\sum_i S_{i,i+o} - \frac1K\sum_i \operatorname{mean}_{j}
    e^{S_{ij}}`, NWJ on :math:`S + 1`: still a lower bound, without the separate network.
    Maximise the value with respect to the critic and ``u_network`` together.

    Row-wise (a log-sum-exp over each row's negatives): every path of the local losses takes
    it; with ``u_network`` they pass the anchors and targets.

    Args:
        u_network: an ``nn.Module`` mapping the concatenated positive pair
            ``[x_i, y_{i+o}]`` ``(..., N, Dx + Dy)`` to ``(..., N)`` or ``(..., N, 1)``
            (e.g. ``mitools.critics.mlp(dx + dy, (256, 256), 1)``), or ``None``.

    Example:
        >>> import torch
        >>> from mitools.critics import mlp
        >>> est = FLO(u_network=mlp(4, (8,), 1))
        >>> x, y = torch.randn(6, 2), torch.randn(6, 2)
        >>> est(torch.zeros(6, 6), anchors=x, targets=y).shape
        torch.Size([])
    """

    name = "flo"
    direction = "lower"
    needs_log_density = False
    rowwise = gen.FLO

    def __init__(self, u_network: nn.Module | None = None):
        super().__init__()
        if u_network is not None and not isinstance(u_network, nn.Module):
            raise TypeError(f"FLO: u_network must be an nn.Module, got {type(u_network).__name__}")
        self.u_network = u_network
        self.needs_targets = u_network is not None

    @property
    def needs_anchors(self) -> bool:
        """Whether the per-pair network needs the anchors (with a ``u_network``)."""
        return self.u_network is not None

    def _pair_term(self, anchors: Tensor | None, positives: Tensor | None) -> Tensor:
        """:math:`u(x_i, y_{i+o})` from the anchors and their positives, each ``(..., N, D)``."""
        if self.u_network is None:
            raise ValueError("FLO was built without u_network: pass u=... to forward")
        if anchors is None or positives is None:
            raise ValueError(
                "FLO with a u_network needs anchors=x (..., N, Dx) and targets=y "
                "(..., M, Dy) to compute its per-pair term (or pass u (..., N))"
            )
        # numpy anchors failed in .expand, anchors of other rows in a broadcast error, other
        # widths in the network's matmul: each is named here (as TUBA's baseline does)
        for arg, t in (("anchors", anchors), ("targets", positives)):
            if not isinstance(t, Tensor) or not t.is_floating_point():
                got = f"dtype {t.dtype}" if isinstance(t, Tensor) else type(t).__name__
                raise TypeError(f"FLO: {arg} must be a floating-point torch.Tensor, got {got}")
            if t.dim() < 2:
                raise ValueError(f"FLO: {arg} has shape {tuple(t.shape)} but must be "
                                 "(..., N, D) with at least 2 dims")
        if anchors.shape[-2] != positives.shape[-2]:
            raise ValueError(
                f"FLO: anchors has shape {tuple(anchors.shape)} but the scores have "
                f"{positives.shape[-2]} rows (their positives: {tuple(positives.shape)}); "
                "give one anchor per row"
            )
        lead = torch.broadcast_shapes(anchors.shape[:-1], positives.shape[:-1])
        dtype = torch.promote_types(anchors.dtype, positives.dtype)
        pair = torch.cat([anchors.to(dtype).expand(*lead, anchors.shape[-1]),
                          positives.to(dtype).expand(*lead, positives.shape[-1])], dim=-1)
        try:
            out = self.u_network(pair)
        except RuntimeError as err:
            raise ValueError(
                f"FLO: u_network failed on the pairs [x_i, y_i] of shape {tuple(pair.shape)} "
                f"(anchors {tuple(anchors.shape)}, positives {tuple(positives.shape)}): {err}; "
                f"it must take Dx + Dy = {pair.shape[-1]} features") from None
        return out.squeeze(-1) if out.dim() == pair.dim() and out.shape[-1] == 1 else out

    def pair_term(self, anchors: Tensor, targets: Tensor, offset: int = 0) -> Tensor:
        """:math:`u(x_i, y_{i+o})` of every positive pair, ``(..., N)``."""
        offset = check_int("FLO.pair_term: offset", offset, 0)
        return self._pair_term(anchors, positive_targets(targets, anchors.shape[-2], offset))

    def forward(
        self,
        scores: Tensor,
        *,
        u: Tensor | None = None,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
        targets: Tensor | None = None,
        problems: ProblemIndex | None = None,
    ) -> Tensor:
        if u is None and self.u_network is not None:
            if targets is not None:
                targets = positive_targets(targets, scores.shape[-2], offset)
            u = self._pair_term(anchors, targets)
        return bounds.flo(scores, u, offset=offset, row_mask=row_mask, col_mask=col_mask)

    def finish(
        self,
        stats: bounds.RowStatistics,
        *,
        anchors: Tensor | None = None,
        targets: Tensor | None = None,
        **_: Any,
    ) -> Tensor:
        """The bound from the row statistics; with a ``u_network``, its term of the anchors
        and each row's positive ``targets (..., N, Dy)``."""
        u = self._pair_term(anchors, targets) if self.u_network is not None else None
        return gen.FLO.finish(stats, u=u)

    def learning_objective(self, scores: Tensor, **kwargs: Any) -> Tensor:
        """The FLO value itself (a lower bound: maximise it over the critic and ``u``)."""
        return self.forward(scores, **kwargs)


# The upper bounds lived here until they got their own module; their names still resolve from
# this path (lazily: mitools.estimators.upper imports this module).
_MOVED = {"CLUB", "VCLUB", "L1Out", "_UpperBound", "_OnScores"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from mitools.estimators import upper as _upper

        return getattr(_upper, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
