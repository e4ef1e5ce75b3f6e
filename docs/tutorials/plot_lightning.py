"""
MC dropout in PyTorch Lightning
===============================

Lightning's ``Trainer`` calls ``model.eval()`` before ``predict`` and
``test``, which turns dropout off: a model that is sampled T times in
``predict_step`` then returns T identical answers and no uncertainty. The
fix is to draw the samples under :func:`bayesdrop.sampling` (or with
:func:`bayesdrop.sample`, which uses it), which switches the dropout back on
inside the step and leaves everything else (BatchNorm) in eval.

This tutorial trains a concrete-dropout MLP on scikit-learn's digits with
:func:`bayesdrop.elbo_loss` in ``training_step``, returns the MC predictive
from ``predict_step`` and ``test_step``, and logs calibration metrics at the
end of testing.
"""

# %%
# A LightningModule with learned dropout rates
# --------------------------------------------
# ``elbo_loss`` is the per-example negative ELBO that :func:`bayesdrop.fit`
# minimises: the mean NLL of the batch plus the model's KL divided by the
# training-set size (here the concrete-dropout regulariser).

import logging

import lightning.pytorch as pl
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import bayesdrop

logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # keep the Trainer's banners out

X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16, dtype=torch.float32)
y = torch.tensor(y)
train, test = TensorDataset(X[:1400], y[:1400]), TensorDataset(X[1400:], y[1400:])


class DigitsClassifier(pl.LightningModule):
    def __init__(self, num_samples: int = 50) -> None:
        super().__init__()
        self.net = nn.Sequential(
            bayesdrop.nn.ConcreteDropout(nn.Linear(64, 128)),
            nn.ReLU(),
            bayesdrop.nn.ConcreteDropout(nn.Linear(128, 10)),
        )
        self.likelihood = bayesdrop.Categorical()
        self.num_samples = num_samples
        self.test_probs: list[torch.Tensor] = []
        self.test_labels: list[torch.Tensor] = []
        self.eval_mode_seen = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = bayesdrop.elbo_loss(self.net, self.likelihood, self.net(x), y, dataset_size=len(train))
        self.log("train_loss", loss, prog_bar=False)
        return loss

    def predictive(self, x: torch.Tensor) -> torch.Tensor:
        """MC predictive probabilities: T samples drawn with dropout on, whatever mode the Trainer set."""
        logits = bayesdrop.sample(self.net, x, self.num_samples)  # (T, N, 10), under bayesdrop.sampling
        return logits.softmax(-1).mean(0)

    def predict_step(self, batch, batch_idx):
        self.eval_mode_seen = not self.training  # the Trainer switched to eval before this call
        return self.predictive(batch[0])

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.test_probs.append(self.predictive(x))
        self.test_labels.append(y)

    def on_test_epoch_end(self) -> None:
        probs = torch.cat(self.test_probs).cpu().numpy()
        labels = torch.cat(self.test_labels).cpu().numpy()
        self.log_dict(
            {
                "test_accuracy": bayesdrop.metrics.accuracy(probs, labels),
                "test_nll": bayesdrop.metrics.nll(probs, labels),
                "test_ece": bayesdrop.metrics.ece(probs, labels),
            }
        )

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


# %%
# Train and test with a real ``Trainer``
# --------------------------------------

pl.seed_everything(0, verbose=False)
model = DigitsClassifier()
trainer = pl.Trainer(
    max_epochs=15,
    accelerator="cpu",
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
)
trainer.fit(model, DataLoader(train, batch_size=64, shuffle=True))
metrics = trainer.test(model, DataLoader(test, batch_size=200), verbose=False)[0]
print({k: round(v, 3) for k, v in metrics.items()})
print(
    "learned dropout rates:",
    [round(float(m.p.detach()), 3) for m in model.net if isinstance(m, bayesdrop.nn.ConcreteDropout)],
)

# %%
# The Trainer's eval switch cannot turn the dropout off
# -----------------------------------------------------
# ``trainer.predict`` puts the module in eval mode before calling
# ``predict_step``. Two predictions of the same images still differ, because
# each is an average of fresh MC samples; a plain forward pass in eval mode
# gives the same output every time, with no uncertainty in it.

first = torch.cat(trainer.predict(model, DataLoader(test, batch_size=200)))
second = torch.cat(trainer.predict(model, DataLoader(test, batch_size=200)))
print(f"predict_step ran in eval mode: {model.eval_mode_seen}")
print(f"largest difference between two MC predictions: {(first - second).abs().max():.4f}")
model.eval()
with torch.no_grad():
    print(f"...and between two eval-mode passes: {(model(X[1400:]) - model(X[1400:])).abs().max():.4f}")

# %%
# Uncertainty that points at the errors
# -------------------------------------
# The mutual information (BALD) of the MC samples is higher on the test
# images the model gets wrong.

with torch.no_grad():
    samples = bayesdrop.sample(model.net, X[1400:], 100, seed=0).softmax(-1).numpy()
wrong = samples.mean(0).argmax(1) != y[1400:].numpy()
mi = bayesdrop.metrics.mutual_information(samples)
print(f"mutual information: {mi[wrong].mean():.3f} on errors, {mi[~wrong].mean():.3f} on correct predictions")
print(
    f"misclassification AUROC of the entropy: {bayesdrop.metrics.misclassification_auroc(samples.mean(0), y[1400:].numpy()):.3f}"
)
