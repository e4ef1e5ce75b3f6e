"""
Active learning on digits: BALD against random acquisition
==========================================================

:func:`bayesdrop.active.run_loop` starts from 20 labelled digits, trains a
fresh MC-dropout network each round, scores the unlabelled pool with the
model's MC samples and labels the 10 examples it is most uncertain about.
BALD (the mutual information between the label and the dropout masks) is
compared with random acquisition over two seeds, and
:func:`bayesdrop.plots.active_learning_curves` draws the curves with a band
of one standard error. On a problem this small, over six rounds, the two
strategies end close together (two seeds cannot separate them); the MNIST
runs on the Reproductions page show where BALD pays off and where top-k BALD
fails (repeated images, which BatchBALD handles).
"""

# %%

import matplotlib.pyplot as plt
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import TensorDataset

import bayesdrop
from bayesdrop import active

X, y = load_digits(return_X_y=True)
X, y = torch.tensor(X / 16, dtype=torch.float32), torch.tensor(y)
pool, test = TensorDataset(X[:1300], y[:1300]), (X[1300:], y[1300:])  # the pool's labels play the oracle


def make_model() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))


runs: dict[str, list[active.ActiveHistory]] = {"bald": [], "random": []}
for method in runs:
    for seed in (0, 1):
        runs[method].append(
            active.run_loop(
                pool,
                make_model,
                test=test,
                rounds=6,
                k=10,
                method=method,
                initial=20,
                fit_options={"epochs": 150, "batch_size": 32},
                acquire_options={"num_samples": 20},
                seed=seed,
                progress=False,
            )
        )
    final = [h.metrics[-1]["accuracy"] for h in runs[method]]
    print(f"{method:6s}: test accuracy with {runs[method][0].labels[-1]} labels: {[round(a, 3) for a in final]}")

fig, ax = plt.subplots(figsize=(5, 3.5))
bayesdrop.plots.active_learning_curves(runs, metric="accuracy", ax=ax)
ax.set_title("digits, 10 labels per round")
plt.show()

# %%
# What BALD picked
# ----------------
# The first batch BALD chose on seed 0, with the true labels: ambiguous
# strokes rather than the typical digit of each class.

chosen = runs["bald"][0].chosen[0]
fig, axes = plt.subplots(1, len(chosen), figsize=(10, 1.4))
for ax, i in zip(axes, chosen, strict=True):
    ax.imshow(X[i].reshape(8, 8), cmap="gray_r")
    ax.set_title(int(y[i]), fontsize=8)
    ax.axis("off")
plt.show()
