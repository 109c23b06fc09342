"""A picture of :func:`~mitools.estimate.estimate_mi`'s training, fold by fold."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mitools.estimate.result import MIEstimate

__all__ = ["plot_history"]


def plot_history(result: MIEstimate, ax: Any = None) -> Any:
    """Plot each fold's training history: the bound on the validation split (solid), the mean
    minibatch bound between evaluations (dotted), the critic each fold kept (a large dot at
    its step, with the fold's held-out bound as a cross at the same step), and the estimate
    (dashed). Needs matplotlib (an optional dependency).

    The curves are the training criterion on each fold's validation split, used only to choose
    the step to keep; they are not the estimate. They can lie above the dashed line: the kept
    point is the best of many noisy evaluations on a small split (a maximum is biased up), and
    the estimate is measured afterwards on other samples (each fold's test part, and with
    ``report="corrected"`` its training samples). The crosses are what each fold's critic
    scored on its test part; the estimate is close to their mean (exactly that mean with
    ``report="held_out"``).

    Args:
        result: a neural :class:`~mitools.estimate.MIEstimate`.
        ax: a matplotlib ``Axes`` to draw on; ``None``: a new figure.

    Returns:
        The ``Axes``.

    Raises:
        ImportError: matplotlib is not installed (``pip install matplotlib``).
        TypeError: ``ax`` is neither ``None`` nor an ``Axes``.
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
    elif not all(callable(getattr(ax, m, None)) for m in ("plot", "axhline", "legend")):
        raise TypeError(
            f"plot_history: ax must be a matplotlib Axes (e.g. from plt.subplots()) or None, "
            f"got {type(ax).__name__}")
    colors = []
    for k, fold in enumerate(result.folds):  # a loop over folds
        steps = [h.step for h in fold.history]
        label = f"fold {k + 1}: " + ("validation" if fold.steps else "untrained (screen)")
        (line,) = ax.plot(steps, [h.val for h in fold.history], label=label)
        colors.append(line.get_color())
        ax.plot(steps[1:], [h.train for h in fold.history][1:], ls=":", color=colors[-1])
    ax.plot([], [], ls=":", color="gray", label="training minibatches")
    for k, fold in enumerate(result.folds):  # the kept critics, after the curves in the legend
        val = next(h.val for h in fold.history if h.step == fold.best_step)
        ax.plot([fold.best_step], [val], "o", ms=8, mec="black", color=colors[k],
                label="kept critic: validation" if k == 0 else None)
        ax.plot([fold.best_step], [fold.held_out], "x", ms=8, mew=2, color=colors[k],
                label="kept critic: held out" if k == 0 else None)
    ax.axhline(result.value, color="black", ls="--", lw=1,
               label=f"estimate {result.value:.3f} nats")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"{result.bound} bound (nats)")
    ax.set_title("estimate_mi: what each fold trained (validation: chooses the step)")
    ax.legend(fontsize="small")
    return ax
