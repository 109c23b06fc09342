"""
Is the sum of local MI a lower bound on the global MI?
======================================================

Liao, Moyer et al. (2021) maximise MI between *local* image features and a sentence, arguing
that a sum of local MI terms typically lower-bounds the global MI. The chain rule makes the
condition exact:

.. math::

    I(X_1, X_2; T) = I(X_1; T) + I(X_2; T) + \\big[I(X_1; X_2 \\mid T) - I(X_1; X_2)\\big],

so the sum of the local terms is below the global MI exactly when the local features are no
less dependent given the text than without it. With jointly Gaussian variables every term has
a closed form (:func:`mitools.tasks.gaussian_mutual_information`), so both regimes can be drawn.

**Left:** two local features with prior correlation :math:`r`, and a "text"
:math:`T = X_1 + X_2 + \\varepsilon`. While the local features are anti-correlated,
uncorrelated or weakly correlated (up to :math:`r \\approx 0.3` here) the sum of local MI stays
below the global MI; as they become redundant (:math:`r \\to 1`) it overshoots.

**Right:** :math:`K` cells that all repeat the same signal, :math:`X_k = T + \\varepsilon_k`.
The local terms add up linearly in :math:`K`, the global MI only logarithmically: redundant
local features break the inequality. This is one reason to maximise the *best* cell (the
paper's ``max`` reduction) or the *mean* (Deep InfoMax) rather than to read a sum of local
terms as global information.
"""

import matplotlib.pyplot as plt
import torch

from mitools.tasks import gaussian_mutual_information as gmi


def two_cells(r: float, noise: float = 1.0) -> tuple[float, float]:
    """(sum of local MI, global MI) for X ~ N(0, [[1, r], [r, 1]]), T = X1 + X2 + noise."""
    cov = torch.tensor(
        [
            [1.0, r, 1.0 + r],
            [r, 1.0, 1.0 + r],
            [1.0 + r, 1.0 + r, 2.0 + 2.0 * r + noise**2],
        ],
        dtype=torch.float64,
    )
    local = gmi(cov, [0], [2]) + gmi(cov, [1], [2])
    return local, gmi(cov, [0, 1], [2])


def redundant_cells(k: int, noise: float = 1.0) -> tuple[float, float]:
    """(sum of local MI, global MI) for K cells X_k = T + noise_k, T ~ N(0, 1)."""
    cov = torch.full((k + 1, k + 1), 1.0, dtype=torch.float64)
    cov[:k, :k] += noise**2 * torch.eye(k, dtype=torch.float64)
    local = sum(gmi(cov, [i], [k]) for i in range(k))
    return local, gmi(cov, list(range(k)), [k])


rs = torch.linspace(-0.9, 0.95, 80).tolist()
pairs = [two_cells(r) for r in rs]
ks = list(range(1, 17))
redundant = [redundant_cells(k) for k in ks]

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
ax1.plot(rs, [p[1] for p in pairs], label="global  I(X1, X2; T)", lw=2)
ax1.plot(rs, [p[0] for p in pairs], label="sum of local  I(X1; T) + I(X2; T)", lw=2, ls="--")
fails = [r for r, (loc, glob) in zip(rs, pairs, strict=True) if loc > glob + 1e-12]
if fails:
    ax1.axvspan(min(fails), max(fails), color="tab:red", alpha=0.1, label="sum > global")
ax1.set_xlabel("prior correlation r of the local features")
ax1.set_ylabel("nats")
ax1.set_title("two cells, T = X1 + X2 + noise")
ax1.legend(fontsize=8)

ax2.plot(ks, [p[1] for p in redundant], "o-", label="global", lw=2)
ax2.plot(ks, [p[0] for p in redundant], "s--", label="sum of local", lw=2)
ax2.set_xlabel("number of redundant cells K")
ax2.set_title("redundant cells, X_k = T + noise_k")
ax2.legend(fontsize=8)
fig.tight_layout()

# %%
# The numbers behind the figure, at a few points:
for r in (-0.5, 0.0, 0.5, 0.9):
    loc, glob = two_cells(r)
    print(f"r = {r:+.1f}: sum of local = {loc:.3f}, global = {glob:.3f}, "
          f"local <= global: {loc <= glob + 1e-12}")
for k in (1, 2, 4, 16):
    loc, glob = redundant_cells(k)
    print(f"K = {k:2d} redundant cells: sum of local = {loc:.3f}, global = {glob:.3f}")
