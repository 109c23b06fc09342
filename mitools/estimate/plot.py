"""A picture of :func:`~mitools.estimate.estimate_mi`'s training, fold by fold."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mitools.estimate.result import MIEstimate

__all__ = ["plot_history"]


def plot_history(result: MIEstimate, ax: Any = None) -> Any:
    """Plot each fold's training history: the bound on the validation split (solid), the mean
    minibatch bound between evaluations (dotted), the kept critic (a dot), and the estimate
    (dashed). Needs matplotlib (an optional dependency).

    Args:
        result: a neural :class:`~mitools.estimate.MIEstimate`.
        ax: a matplotlib ``Axes`` to draw on; ``None``: a new figure.

    Returns:
        The ``Axes``.

    Raises:
        ImportError: matplotlib is not installed (``pip install matplotlib``).
        ValueError: a result without training history (a classical estimate).

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import mitools
        >>> x, y = mitools.CorrelatedGaussian(dim=1, mi=0.5).sample(400, generator=0)
        >>> r = mitools.estimate_mi(x, y, folds=2, max_steps=20, eval_every=10)
        >>> ax = r.plot_history()
        >>> ax.get_xlabel()
        'training step'
    """
    result._neural("plot_history")
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "plot_history needs matplotlib, which is not installed: pip install matplotlib"
        ) from None
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0))
    for k, fold in enumerate(result.folds):  # a loop over folds
        steps = [h.step for h in fold.history]
        val = [h.val for h in fold.history]
        (line,) = ax.plot(steps, val, label=f"fold {k + 1}: validation")
        ax.plot(steps[1:], [h.train for h in fold.history][1:], ls=":", color=line.get_color())
        best = steps.index(fold.best_step)
        ax.plot([fold.best_step], [val[best]], "o", color=line.get_color())
    ax.axhline(result.value, color="black", ls="--", lw=1,
               label=f"estimate {result.value:.3f} nats")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"{result.bound} bound (nats)")
    ax.set_title("estimate_mi: validation (solid), training minibatches (dotted)")
    ax.legend(fontsize="small")
    return ax
