r"""Generative estimators, upper bounds and FLO as modules: BA, DoE, CLUB, vCLUB, L1Out, FLO.

Built on the functions of :mod:`mitools.bounds.generative`. Beside the shared
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
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from mitools import bounds
from mitools.estimators.base import Estimator

__all__ = ["BA", "CLUB", "FLO", "VCLUB", "DoE", "GenerativeEstimator", "L1Out"]


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

    Attributes:
        direction: ``"lower"`` (BA, FLO), ``"upper"`` (CLUB, vCLUB, L1Out, under the
            conditions in their docstrings) or ``"neither"`` (DoE): what the value bounds.
        needs_log_density: whether the scores must be log conditional densities
            :math:`\log q(y_j \mid x_i)` rather than an unnormalised critic's.
        needs_targets: whether ``forward`` needs ``targets (..., M, Dy)``, the column-side
            inputs (FLO's per-pair network, DoE's marginal model).
    """

    direction: str = "lower"
    needs_log_density: bool = True
    needs_targets: bool = False

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

    def extra_repr(self) -> str:
        return f"direction={self.direction!r}"


class _OneFunction(GenerativeEstimator):
    """A generative estimator that forwards to one function of :mod:`mitools.bounds`."""

    _fn: Any

    def forward(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
        targets: Tensor | None = None,
        problems: Any = None,
    ) -> Tensor:
        return type(self)._fn(scores, offset=offset, row_mask=row_mask, col_mask=col_mask)


class BA(GenerativeEstimator):
    """Barber-Agakov lower bound with a known :math:`H(Y)`, see :func:`mitools.bounds.ba`.

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

    def __init__(self, entropy_y: float | None = None):
        super().__init__()
        if entropy_y is None:
            raise ValueError(
                "BA needs entropy_y=H(Y) in nats (known for mitools.tasks, e.g. "
                "task.entropy_y()); without it use 'doe' with a marginal model, which is an "
                "estimate but not a bound"
            )
        if isinstance(entropy_y, bool) or not isinstance(entropy_y, (int, float)) or not (
            abs(float(entropy_y)) < float("inf")
        ):
            raise ValueError(f"BA: entropy_y must be a finite number of nats, got {entropy_y!r}")
        self.entropy_y = float(entropy_y)

    def forward(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
        targets: Tensor | None = None,
    ) -> Tensor:
        return bounds.ba(scores, self.entropy_y, offset=offset, row_mask=row_mask,
                         col_mask=col_mask)

    def extra_repr(self) -> str:
        return f"entropy_y={self.entropy_y}, direction={self.direction!r}"


class DoE(GenerativeEstimator):
    r"""Difference-of-entropies estimate (not a bound), see :func:`mitools.bounds.doe`.

    Args:
        marginal: a model of :math:`p(y)` with ``log_prob(targets) -> (..., M)`` (e.g.
            :class:`mitools.conditionals.GaussianMarginal`), trained with the conditional
            (its log-likelihood is part of the gradient). Without it, pass ``log_marginal``
            to :meth:`forward`.

    Example:
        >>> import torch
        >>> DoE()(torch.full((3, 3), -1.0), log_marginal=torch.full((3,), -2.5))
        tensor(1.5000)
    """

    name = "doe"
    direction = "neither"

    def __init__(self, marginal: nn.Module | None = None):
        super().__init__()
        self.marginal = marginal
        self.needs_targets = marginal is not None

    def _log_marginal(self, log_marginal: Tensor | None, targets: Tensor | None) -> Tensor:
        if log_marginal is not None:
            return log_marginal
        if self.marginal is None or targets is None:
            raise ValueError(
                "DoE needs the log marginal density of the columns: pass log_marginal "
                "(..., M), or build DoE(marginal=model) and pass targets=y (..., M, Dy)"
            )
        return self.marginal.log_prob(targets)

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
    ) -> Tensor:
        lm = self._log_marginal(log_marginal, targets)
        return bounds.doe(scores, lm, offset=offset, row_mask=row_mask, col_mask=col_mask)

    def learning_objective(self, scores: Tensor, **kwargs: Any) -> Tensor:
        """The DoE value, whose gradient is that of both models' log-likelihoods."""
        return self.forward(scores, **kwargs)


class CLUB(_OneFunction):
    """CLUB upper bound, see :func:`mitools.bounds.club`; minimise it, fit ``q`` by likelihood.

    Example:
        >>> import torch
        >>> CLUB()(torch.tensor([[-1.0, -3.0], [-5.0, -1.0]]))
        tensor(3.)
    """

    name = "club"
    direction = "upper"
    _fn = staticmethod(bounds.club)


class VCLUB(GenerativeEstimator):
    """Sampled CLUB, see :func:`mitools.bounds.vclub`: one uniformly drawn negative per row.

    Args:
        generator: optional ``torch.Generator`` for the draws.

    Example:
        >>> import torch
        >>> VCLUB(generator=torch.Generator().manual_seed(0))(torch.zeros(4, 4))
        tensor(0.)
    """

    name = "vclub"
    direction = "upper"

    def __init__(self, generator: torch.Generator | None = None):
        super().__init__()
        self.generator = generator

    def forward(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
        targets: Tensor | None = None,
    ) -> Tensor:
        return bounds.vclub(scores, generator=self.generator, offset=offset, row_mask=row_mask,
                            col_mask=col_mask)


class L1Out(_OneFunction):
    """Leave-one-out upper bound, see :func:`mitools.bounds.l1out`.

    Example:
        >>> import torch
        >>> L1Out()(torch.tensor([[-1.0, -3.0], [-3.0, -1.0]]))
        tensor(2.)
    """

    name = "l1out"
    direction = "upper"
    _fn = staticmethod(bounds.l1out)


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

    def __init__(self, u_network: nn.Module | None = None):
        super().__init__()
        if u_network is not None and not isinstance(u_network, nn.Module):
            raise TypeError(f"FLO: u_network must be an nn.Module, got {type(u_network).__name__}")
        self.u_network = u_network
        self.needs_targets = u_network is not None

    def pair_term(self, anchors: Tensor, targets: Tensor, offset: int = 0) -> Tensor:
        """:math:`u(x_i, y_{i+o})` of every positive pair, ``(..., N)``."""
        if self.u_network is None:
            raise ValueError("FLO was built without u_network: pass u=... to forward")
        n = anchors.shape[-2]
        if targets.shape[-2] < n + offset:
            raise ValueError(
                f"FLO: targets {tuple(targets.shape)} must hold the positives of the "
                f"{n} anchors at rows offset..offset+N (offset={offset})"
            )
        positives = targets[..., offset : offset + n, :]
        lead = torch.broadcast_shapes(anchors.shape[:-1], positives.shape[:-1])
        pair = torch.cat([anchors.expand(*lead, anchors.shape[-1]),
                          positives.expand(*lead, positives.shape[-1])], dim=-1)
        out = self.u_network(pair)
        return out.squeeze(-1) if out.dim() == pair.dim() and out.shape[-1] == 1 else out

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
    ) -> Tensor:
        if u is None and self.u_network is not None:
            if anchors is None or targets is None:
                raise ValueError(
                    "FLO with a u_network needs anchors=x (..., N, Dx) and targets=y "
                    "(..., M, Dy) to compute its per-pair term (or pass u (..., N))"
                )
            u = self.pair_term(anchors, targets, offset)
        elif u is None:  # tied to the critic: FLO's optimum for a self-normalised critic
            n = scores.shape[-2]
            u = -torch.diagonal(scores, offset=offset, dim1=-2, dim2=-1)[..., :n]
        return bounds.flo(scores, u, offset=offset, row_mask=row_mask, col_mask=col_mask)

    def learning_objective(self, scores: Tensor, **kwargs: Any) -> Tensor:
        """The FLO value itself (a lower bound: maximise it over the critic and ``u``)."""
        return self.forward(scores, **kwargs)
