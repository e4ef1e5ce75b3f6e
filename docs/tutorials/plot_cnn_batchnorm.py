"""
A CNN with BatchNorm and ``nn.Dropout``: sampling keeps BatchNorm in eval
==========================================================================

torchvision's classifiers (VGG, AlexNet, MobileNet, EfficientNet) put
BatchNorm in the feature extractor and ``nn.Dropout`` in the classifier
head. The usual MC-dropout recipe, ``model.train()`` and T forward passes,
then does two wrong things at once: every BatchNorm normalises with the
statistics of the current batch instead of its running averages (so a
prediction depends on which other images share the batch), and every pass
updates the running averages (so predicting changes the model).

:func:`bayesdrop.sample` and :func:`bayesdrop.sampling` switch on only the
dropout; BatchNorm stays in eval mode and its buffers are untouched. This
tutorial builds a small torchvision-style CNN from its layers (no weights
are downloaded), trains it on scikit-learn's 8x8 digits and compares both
recipes.
"""

# %%
# A torchvision-style network
# ---------------------------

import copy

import torch
from sklearn.datasets import load_digits
from torch import nn

import bayesdrop


def conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def small_vgg(num_classes: int = 10, p: float = 0.5) -> nn.Sequential:
    features = nn.Sequential(conv_bn(1, 16), conv_bn(16, 16), nn.MaxPool2d(2), conv_bn(16, 32), nn.MaxPool2d(2))
    classifier = nn.Sequential(
        nn.Flatten(),
        nn.Dropout(p),
        nn.Linear(32 * 2 * 2, 64),
        nn.ReLU(inplace=True),
        nn.Dropout(p),
        nn.Linear(64, num_classes),
    )
    return nn.Sequential(features, classifier)


X, y = load_digits(return_X_y=True)
x = torch.tensor(X / 16, dtype=torch.float32).reshape(-1, 1, 8, 8)
y = torch.tensor(y)
torch.manual_seed(0)
net = small_vgg()
history = bayesdrop.fit(
    net,
    (x[:1400], y[:1400]),
    likelihood=bayesdrop.Categorical(),
    epochs=15,
    batch_size=64,
    lr=3e-3,
    seed=0,
    progress=False,
)
print(f"training loss {history.loss[0]:.3f} -> {history.loss[-1]:.3f}")

# %%
# bayesdrop: dropout on, BatchNorm in eval
# ----------------------------------------

test_x, test_y = x[1400:], y[1400:]
bn = net[0][0][1]
before = bn.running_mean.clone()
samples = bayesdrop.sample(net, test_x, 100, seed=0)  # (T, N, 10) logits
print(f"BatchNorm running mean unchanged by sampling: {torch.equal(before, bn.running_mean)}")
# With consistent masks (the same T networks for every image) an image's samples
# are the same whether it is predicted alone or in a batch:
together = bayesdrop.sample(net, test_x, 100, seed=0, consistent=True)
alone = bayesdrop.sample(net, test_x[:1], 100, seed=0, consistent=True)
print(f"an image's samples do not depend on its batch: {torch.allclose(alone[:, 0], together[:, 0], atol=1e-5)}")
ev = bayesdrop.evaluate(net, test_x, test_y, num_samples=100, seed=0)
print(f"MC predictive: accuracy {ev.mc['accuracy']:.3f}, NLL {ev.mc['nll']:.3f}, ECE {ev.mc['ece']:.3f}")

# %%
# The naive recipe: ``model.train()`` and T passes
# ------------------------------------------------
# On a copy, so the trained network is kept. Each pass normalises with the
# batch's own statistics and moves the running averages.

naive = copy.deepcopy(net).train()
bn_naive = naive[0][0][1]
with torch.no_grad():
    batch_probs = torch.stack([naive(test_x).softmax(-1) for _ in range(100)]).mean(0)
    alone4 = torch.stack([naive(test_x[:4]).softmax(-1) for _ in range(100)]).mean(0)
drift = (bn_naive.running_mean - bn.running_mean).abs().max()
print(f"running mean moved by up to {drift:.3f} while 'predicting'")
print(
    "the same 4 images, predicted in the full batch vs alone: "
    f"max probability difference {(batch_probs[:4] - alone4).abs().max():.3f}"
)
naive_acc = (batch_probs.argmax(1) == test_y).float().mean()
print(f"naive MC accuracy on the full test batch {naive_acc:.3f} (bayesdrop: {ev.mc['accuracy']:.3f})")

# %%
# Where the uncertainty is
# ------------------------
# The images with the highest mutual information between the prediction and
# the dropout masks, with the MC predictive's top class and its probability.

import matplotlib.pyplot as plt  # noqa: E402

probs = samples.softmax(-1).numpy()
mi = bayesdrop.metrics.mutual_information(probs)
order = mi.argsort()[::-1][:8]
fig, axes = plt.subplots(1, 8, figsize=(10, 1.8))
for ax, i in zip(axes, order, strict=True):
    ax.imshow(test_x[i, 0], cmap="gray_r")
    p = probs[:, i].mean(0)
    ax.set_title(f"{p.argmax()} ({p.max():.2f})\ntrue {int(test_y[i])}", fontsize=8)
    ax.axis("off")
fig.suptitle("most uncertain test digits (MI)", fontsize=9)
plt.show()
