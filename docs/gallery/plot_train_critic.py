"""
Training a critic: InfoNCE against SMILE
========================================

Train a separable critic (two 256-unit layers, a 32-d embedding) on a 20-dimensional Gaussian
with 6 nats of MI, once with InfoNCE and once with SMILE, using the same batches. A bound's
value is the estimate and its gradient the training signal, so training is just maximising
it. InfoNCE cannot pass :math:`\\log 64`; SMILE can.
"""

import math

import matplotlib.pyplot as plt
import torch

import mitools

torch.set_num_threads(1)  # small batches: one thread is fastest
torch.manual_seed(0)
task = mitools.CorrelatedGaussian(dim=20, mi=6.0)
steps, batch = 500, 64
histories = {}
for name in ("infonce", "smile"):
    torch.manual_seed(0)
    critic = mitools.SeparableCritic(20, 20, hidden=(256, 256), embed_dim=32)
    bound = mitools.get_estimator(name)
    opt = torch.optim.Adam(critic.parameters(), lr=5e-4)
    gen = torch.Generator().manual_seed(1)
    history = []
    for _ in range(steps):
        x, y = task.sample(batch, generator=gen)
        estimate = bound(critic(x, y))
        opt.zero_grad()
        (-estimate).backward()
        opt.step()
        history.append(float(estimate.detach()))
    histories[name] = history

fig, ax = plt.subplots(figsize=(6, 3.5))
for name, history in histories.items():
    ax.plot(history, lw=0.8, label=name)
ax.axhline(task.mutual_information(), color="black", lw=1, label="true MI")
ax.axhline(math.log(batch), color="gray", ls=":", lw=1, label="log 64")
ax.set_xlabel("step")
ax.set_ylabel("estimate (nats)")
ax.legend(fontsize=8)
fig.tight_layout()

for name, history in histories.items():
    tail = history[-100:]
    print(f"{name:8s} mean of the last 100 estimates: {sum(tail) / len(tail):.2f} nats")
