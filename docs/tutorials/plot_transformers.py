"""
MC dropout on a Hugging Face transformer
========================================

A BERT-style classifier has dropout in three places: ``nn.Dropout`` modules
after the embeddings and in every layer, and dropout applied functionally
inside the attention (``training=self.training``). The Hugging Face
``Trainer`` evaluates in eval mode, so its predictions carry no MC
uncertainty. :func:`bayesdrop.sample` and :func:`bayesdrop.evaluate` with
``train_mode=True`` switch every dropout on, functional ones included, while
normalisation layers with running statistics stay in eval; ``output="logits"``
picks the tensor out of the model's ``ModelOutput``.

Everything is built locally: a word-level vocabulary written to a file, a
small BERT from a config, and a synthetic sentiment task whose labels are
random where the text is ambiguous.
"""

# %%
# Data, tokenizer and a small BERT from a config
# -----------------------------------------------

import logging
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers
from torch.utils.data import DataLoader

import bayesdrop

logging.getLogger("transformers").setLevel(logging.ERROR)
rng = np.random.default_rng(0)
positive = ["good", "great", "fine", "lovely", "superb", "pleasant"]
negative = ["bad", "awful", "poor", "dull", "boring", "terrible"]
filler = ["the", "film", "was", "plot", "acting", "and", "quite", "very", "a", "story"]


def sentence() -> tuple[str, int]:
    """A review with some positive and some negative words; the label follows the majority, a coin on ties."""
    n_pos, n_neg = rng.integers(0, 4, size=2)
    words = list(rng.choice(filler, 4)) + list(rng.choice(positive, n_pos)) + list(rng.choice(negative, n_neg))
    rng.shuffle(words)
    label = int(n_pos > n_neg) if n_pos != n_neg else int(rng.integers(2))
    return " ".join(words), label


texts, labels = zip(*(sentence() for _ in range(1200)), strict=True)
vocab = Path(tempfile.mkdtemp()) / "vocab.txt"
vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *positive, *negative, *filler]))
tokenizer = transformers.BertTokenizer(vocab=str(vocab))
encoded = tokenizer(list(texts), padding=True, return_tensors="pt")
examples = [
    {"input_ids": encoded["input_ids"][i], "attention_mask": encoded["attention_mask"][i], "labels": labels[i]}
    for i in range(len(texts))
]
train, test = examples[:1000], examples[1000:]

config = transformers.BertConfig(
    vocab_size=tokenizer.vocab_size,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=32,
    num_labels=2,
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
)
torch.manual_seed(0)
model = transformers.BertForSequenceClassification(config)

# %%
# Fine-tune with the ``Trainer``
# ------------------------------

args = transformers.TrainingArguments(
    output_dir=tempfile.mkdtemp(),
    num_train_epochs=8,
    per_device_train_batch_size=32,
    learning_rate=2e-3,
    report_to=[],
    save_strategy="no",
    logging_strategy="no",
    disable_tqdm=True,
    use_cpu=True,
    seed=0,
)
trainer = transformers.Trainer(model=model, args=args, train_dataset=train)
result = trainer.train()
print(f"training loss {result.training_loss:.3f}")

# %%
# The MC predictive on tokenised dict batches
# -------------------------------------------
# ``sample`` takes the dict the tokenizer made and calls ``model(**batch)``.
# Prediction code puts the model in eval mode first (the ``Trainer``'s
# ``predict`` and ``evaluate`` do); ``train_mode=True`` turns every dropout
# (the functional attention dropout too) back on for the sampling and
# restores the mode afterwards.

model.eval()
batch = {"input_ids": encoded["input_ids"][1000:1008], "attention_mask": encoded["attention_mask"][1000:1008]}
logits = bayesdrop.sample(model, batch, 50, output="logits", train_mode=True, seed=0)  # (T=50, 8, 2)
probs = logits.softmax(-1)
print("P(positive), mean over 50 samples:", probs[..., 1].mean(0).numpy().round(2))
print("spread of P(positive) over the samples:", probs[..., 1].std(0).numpy().round(3))
print(f"model still in eval mode: {not model.training}")

# %%
# Calibration of the MC predictive against the eval-mode pass
# -----------------------------------------------------------
# ``evaluate`` streams the test loader (the targets come from the
# ``"labels"`` key of each batch) and returns the MC predictive's metrics and
# those of the deterministic pass; ``write_report`` writes them with the
# figures. The ambiguous reviews (as many positive as negative words) should
# get the least confident predictions.

loader = DataLoader(test, batch_size=100)
ev = bayesdrop.evaluate(model, loader, num_samples=50, output="logits", train_mode=True, seed=0)
for name in ("accuracy", "nll", "ece"):
    print(f"{name:9s} MC {ev.mc[name]:.3f}   eval mode {ev.deterministic[name]:.3f}")
words = [t.split() for t in texts[1000:]]
tie = np.array([sum(w in positive for w in ws) == sum(w in negative for w in ws) for ws in words])
confidence = ev.mc_predictive.max(1)
print(f"mean confidence: {confidence[tie].mean():.2f} on ambiguous reviews, {confidence[~tie].mean():.2f} on the rest")
report = bayesdrop.write_report(ev, Path(tempfile.mkdtemp()) / "bert-report")
print("report written:", sorted(p.name for p in Path(report).iterdir())[:4], "...")

# %%
# The reliability diagram of the MC predictive, with the eval-mode pass as
# the line:

import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(4.5, 4))
bayesdrop.plots.reliability_diagram(ev.mc_predictive, ev.targets, ax=ax, overlay=ev.det_predictive, n_bins=10)
ax.set_title("tiny BERT, synthetic reviews")
plt.show()
