"""scikit-learn estimators: an MLP with dropout whose noise can be learned.

``DropoutRegressor`` and ``DropoutClassifier`` standardise their inputs (and
the regression targets) internally, train with :func:`bayesdrop.fit` and
predict with the MC predictive of :func:`bayesdrop.sample`.

``method`` picks the noise:

- ``"variational"``: every linear layer is a ``VariationalLinear`` with one
  learned alpha per weight (sparse variational dropout), initialised at
  ``log(p / (1 - p))``; the KL term enters the loss (Molchanov et al. 2017).
- ``"mc"``: Bernoulli dropout with the fixed rate ``p`` before every linear
  layer, input included (Gal & Ghahramani 2016).
- ``"gaussian"``: multiplicative Gaussian noise N(1, p/(1-p)) in the same
  places (Srivastava et al. 2014, sec. 10).
- ``"concrete"``: Bernoulli dropout before every linear layer with a learned
  rate per layer, initialised at ``p`` (concrete dropout, Gal, Hron & Kendall
  2017); its regulariser enters the loss.

The regressor learns its observation noise: a second output of log-variances
by default (``heteroscedastic=True``), one noise with ``heteroscedastic=False``.

Held-out data (scikit-learn's names, as in ``MLPClassifier``):
``early_stopping`` holds out ``validation_fraction`` of the rows (stratified
for the classifier), stops after ``n_iter_no_change`` epochs without a lower
validation NLL of the MC predictive and restores the best epoch;
``temperature_scaling`` then fits a temperature on the same rows (the
classifier's logits are divided by it, the regressor's noise std multiplied).
Both default to ``"auto"``: early stopping from 1,000 training rows, the
temperature from 10,000 (:data:`AUTO_MIN_ROWS`, :data:`AUTO_TEMPERATURE_ROWS`).

Defaults (chosen once across datasets by validation scores, never on a test
split; ``benchmarks/learned_noise.md`` has the studies):

- ``DropoutRegressor``: ``method="variational"``, heteroscedastic noise, Adam
  at lr 0.01, batch 128, 400 epochs, the KL warmed up over the first half of
  the epochs (the UCI benchmark's learned-noise recipe).
- ``DropoutClassifier``: ``method="concrete"`` with learned rates starting
  at 0.1 and never below 0.05 (the fixed rate of ``"mc"``), lr 0.003, batch
  64, 200 epochs, ``input_scaling="auto"`` (one pooled standard deviation
  for inputs in one unit, such as pixels).
- Both: early stopping from 1,000 rows, temperature scaling from 10,000.

``kl_warmup_epochs=None`` (the default) warms the KL up over half of the
epochs for ``"variational"`` and not at all for the other methods.

scikit-learn's ``check_estimator`` passes with the tag ``non_deterministic``:
MC predictions draw fresh noise for every row of every call, so predicting a
permuted or sliced ``X`` does not reproduce the same numbers row by row
(``check_methods_sample_order_invariance`` and
``check_methods_subset_invariance`` cannot hold, nor can
``check_pipeline_consistency``, which compares two fits' predictions
exactly; that tag skips them).
With ``random_state`` set, a given call is reproducible.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import Tensor

from ._checks import check_float, check_int, check_option, check_probability
from ._distributed import seed_or_draw, seeded
from .calibrate import fit_noise_scale, fit_temperature
from .likelihoods import Categorical, Gaussian
from .mlp import METHODS, SCALINGS, Method, Scaling, Standardized, build_mlp, standardization
from .montecarlo import sample
from .training import fit

__all__ = [
    "AUTO_MIN_ROWS",
    "AUTO_TEMPERATURE_ROWS",
    "DEFAULT_P",
    "MIN_P",
    "DropoutClassifier",
    "DropoutRegressor",
    "from_state",
]

Auto = bool | Literal["auto"]
#: Training rows from which ``early_stopping="auto"`` holds out a validation split.
AUTO_MIN_ROWS = 1000
#: Training rows from which ``temperature_scaling="auto"`` fits a temperature (1,000 validation rows at 10%).
AUTO_TEMPERATURE_ROWS = 10000
#: ``DropoutClassifier``'s floor under concrete dropout's learned rates (``min_p``; chosen on validation data).
MIN_P = 0.05
#: The rate that ``p=None`` stands for, by method: the fixed rate of "mc" and "gaussian", the initial rate of the
#: learned methods (concrete dropout starts at 0.1 and never falls below :data:`MIN_P`; chosen on validation data).
DEFAULT_P: dict[str, float] = {"variational": 0.05, "mc": 0.05, "gaussian": 0.05, "concrete": 0.1}
#: MC samples of the validation NLL that early stopping reads every epoch (the same draws each epoch).
VAL_SAMPLES = 10


class _DropoutEstimator(BaseEstimator):  # type: ignore[misc]
    model_: Standardized

    # size: scikit-learn reads an estimator's parameters from its __init__ signature, one flat keyword each.
    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (50,),
        method: Method = "variational",
        p: float | None = 0.05,
        *,
        min_p: float = MIN_P,
        input_scaling: Scaling = "column",
        epochs: int = 200,
        lr: float = 3e-3,
        batch_size: int = 64,
        weight_decay: float = 0.0,
        kl_warmup_epochs: int | None = None,
        early_stopping: Auto = "auto",
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        temperature_scaling: Auto = "auto",
        num_samples: int = 100,
        random_state: Any = None,
        device: str | torch.device | None = None,
        progress: bool | None = False,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.method = method
        self.p = p
        self.min_p = min_p
        self.input_scaling = input_scaling
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.kl_warmup_epochs = kl_warmup_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.temperature_scaling = temperature_scaling
        self.num_samples = num_samples
        self.random_state = random_state
        self.device = device
        self.progress = progress

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = True
        return tags

    def _check_params(self) -> tuple[int, ...]:
        name = type(self).__name__
        check_option(self.method, "method", name, METHODS)
        rate = self._rate()
        if self.method == "concrete":
            try:
                check_float(self.min_p, "min_p", name, low=0.0, high=max(rate, 1e-3), high_open=True)  # below p
            except ValueError as err:
                if isinstance(self.min_p, (int, float)) and self.min_p >= rate:  # e.g. p=0.02 with the default floor
                    raise ValueError(
                        f"{err} The floor must lie below the initial rate p={rate!r}: "
                        "pass a smaller min_p, or min_p=0.0 for none."
                    ) from None
                raise
        else:
            check_float(self.min_p, "min_p", name, low=0.0, high=1.0, high_open=True)
        check_option(self.input_scaling, "input_scaling", name, SCALINGS)
        hidden = tuple(self.hidden_layer_sizes)
        for h in hidden:
            check_int(h, "hidden_layer_sizes", name)
        check_int(self.epochs, "epochs", name)
        check_int(self.batch_size, "batch_size", name)
        check_int(self.num_samples, "num_samples", name)
        check_float(self.lr, "lr", name, low=0.0, low_open=True)
        check_float(self.weight_decay, "weight_decay", name, low=0.0)
        if self.kl_warmup_epochs is not None:
            check_int(self.kl_warmup_epochs, "kl_warmup_epochs", name, minimum=0)
        for option in ("early_stopping", "temperature_scaling"):
            value = getattr(self, option)
            if not (isinstance(value, (bool, np.bool_)) or value == "auto"):
                raise ValueError(
                    f"The '{option}' parameter of {name} must be True, False or 'auto'. Got {value!r} instead."
                )
        check_float(self.validation_fraction, "validation_fraction", name, low=0.0, high=1.0, low_open=True,
                    high_open=True)  # fmt: skip
        check_int(self.n_iter_no_change, "n_iter_no_change", name)
        self._check_device()
        return hidden

    def _check_device(self) -> torch.device | None:
        """``device`` as a ``torch.device`` (None: the CPU), with a clear error where it cannot be used."""
        name, value = type(self).__name__, self.device
        if value is None:
            return None
        try:
            device = torch.device(value)
        except (RuntimeError, TypeError):
            raise ValueError(
                f"The 'device' parameter of {name} must be None, a device name such as 'cpu' or 'cuda:0', "
                f"or a torch.device. Got {value!r} instead."
            ) from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"The 'device' parameter of {name} is {value!r}, but this torch sees no CUDA device.")
        return device

    def _rate(self) -> float:
        """``p``, or the method's default rate (:data:`DEFAULT_P`) where it is None."""
        if self.p is None:
            return DEFAULT_P[self.method]
        try:
            return check_probability(self.p, "p", type(self).__name__)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{err} (None picks the method's default rate.)") from None

    def _warmup(self) -> int:
        if self.kl_warmup_epochs is not None:
            return int(self.kl_warmup_epochs)
        return int(self.epochs) // 2 if self.method == "variational" else 0

    def _seed(self, offset: int) -> int | None:
        if self.random_state is None:
            return None
        rs = check_random_state(self.random_state)
        return int(rs.randint(0, 2**31 - 1)) + offset

    def _holdout(self, target: npt.NDArray[Any], classify: bool) -> tuple[Any, Any] | None:
        """Training and validation row indices, or None when no validation split is held out.

        ``"auto"`` holds one out from :data:`AUTO_MIN_ROWS` rows on (stratified
        for a classifier, every class in both parts); an explicit True raises
        where the split is impossible.
        """
        name, n = type(self).__name__, len(target)
        explicit = self.early_stopping is True or self.temperature_scaling is True
        wanted = self._resolve("early_stopping", n) or self._resolve("temperature_scaling", n)
        if not wanted:
            return None
        n_val = math.ceil(n * float(self.validation_fraction))
        try:
            if n_val < 2 or n - n_val < 2:
                raise ValueError(
                    f"The 'early_stopping' parameter of {name} needs at least 2 training and 2 validation rows: "
                    f"validation_fraction={self.validation_fraction} of {n} rows leaves {n - n_val} and {n_val}. "
                    "Give more data, or set early_stopping=False and temperature_scaling=False."
                )
            return self._split(target, n_val, classify)
        except ValueError:
            if explicit:
                raise
            return None  # "auto": no split where none can be made

    def _split(self, target: npt.NDArray[Any], n_val: int, classify: bool) -> tuple[Any, Any]:
        """A (stratified) random split with ``n_val`` validation rows; every class on both sides."""
        name, rows = type(self).__name__, np.arange(len(target))
        seed = self._seed(3)
        if not classify:
            train, val = train_test_split(rows, test_size=n_val, random_state=seed)
            return train, val
        classes, counts = np.unique(target, return_counts=True)
        if len(classes) > 1 and (counts.min() < 2 or n_val < len(classes)):
            raise ValueError(
                f"The 'validation_fraction' parameter of {name} leaves a class out of the validation split: "
                f"{n_val} validation rows for {len(classes)} classes, the rarest with {counts.min()} rows. "
                "Raise validation_fraction, give more rows of the rare classes, or set early_stopping=False and "
                "temperature_scaling=False."
            )
        stratify = target if len(classes) > 1 else None
        train, val = train_test_split(rows, test_size=n_val, random_state=seed, stratify=stratify)
        missing = np.setdiff1d(classes, target[val])
        if len(missing):
            raise ValueError(
                f"The 'validation_fraction' parameter of {name} leaves classes {missing.tolist()} out of the "
                f"validation split ({n_val} rows). Raise validation_fraction, or set early_stopping=False and "
                "temperature_scaling=False."
            )
        return train, val

    def _resolve(self, option: str, n: int) -> bool:
        """Whether ``early_stopping`` or ``temperature_scaling`` is on for ``n`` training rows."""
        value = getattr(self, option)
        if value != "auto":
            return bool(value)
        return n >= (AUTO_MIN_ROWS if option == "early_stopping" else AUTO_TEMPERATURE_ROWS)

    def _fit_net(
        self, X: npt.NDArray[Any], target: npt.NDArray[Any], likelihood: Gaussian | Categorical, n_out: int
    ) -> None:
        hidden = self._check_params()
        classify = isinstance(likelihood, Categorical)
        split = self._holdout(target, classify)
        train, val = (np.arange(len(X)), None) if split is None else split
        x_mean, x_std = (torch.tensor(a, dtype=torch.float32) for a in standardization(X[train], self.input_scaling))
        x = (torch.tensor(X, dtype=torch.float32) - x_mean) / x_std
        y = torch.as_tensor(target)
        stop = split is not None and self._resolve("early_stopping", len(X))
        seed = self._seed(0)
        with seeded(seed):
            net = build_mlp(X.shape[1], hidden, n_out, self.method, self._rate(), min_p=self.min_p)
        self.history_ = fit(
            net,
            (x[train], y[train]),
            likelihood=likelihood,
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            kl_warmup_epochs=self._warmup(),
            weight_decay=self.weight_decay,
            val_data=None if val is None else (x[val], y[val]),
            val_samples=VAL_SAMPLES,
            early_stopping=int(self.n_iter_no_change) if stop else None,
            seed=seed,
            progress=self.progress,
            device=self._check_device(),
        )
        net.cpu()  # trained on `device`; the fitted estimator predicts, pickles and saves on the CPU
        likelihood.cpu()
        self.model_ = Standardized(net, likelihood, x_mean, x_std, self.y_mean_, self.y_std_)
        self.n_iter_ = len(self.history_.epoch)
        self.best_epoch_ = self.history_.best_epoch if stop else None
        self.validation_scores_ = list(self.history_.val_nll)
        if val is not None and self._resolve("temperature_scaling", len(X)):
            self._calibrate(torch.tensor(X[val], dtype=torch.float32), y[val])

    def _calibrate(self, x_val: Tensor, y_val: Tensor) -> None:
        """Fit the temperature on the validation rows (MC predictive, T = ``num_samples``)."""
        out = sample(self.model_, x_val, int(self.num_samples), seed=self._seed(4)).double()
        if isinstance(self.model_.likelihood, Categorical):
            if len(torch.unique(y_val)) < 2:
                return  # one class: every temperature fits, none is learned
            temperature = fit_temperature(out, y_val)
        else:
            temperature = fit_noise_scale(out[..., 0], out[..., 1], y_val.double() * self.y_std_ + self.y_mean_)
        self.model_.temperature.fill_(temperature)

    @property
    def temperature_(self) -> float:
        """The fitted temperature (1.0 without ``temperature_scaling``): see the estimator's parameters."""
        check_is_fitted(self, "model_")
        return float(self.model_.temperature)

    def _samples(self, X: Any, num_samples: int | None) -> Tensor:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        t = check_int(self.num_samples if num_samples is None else num_samples, "num_samples", type(self).__name__)
        return sample(self.model_, torch.tensor(X, dtype=torch.float32), t, seed=self._seed(1)).double()

    def to_state(self) -> dict[str, Any]:
        """Everything needed to rebuild the fitted estimator (see :mod:`bayesdrop.model_file`)."""
        from .model_file import estimator_state

        return estimator_state(self)


class DropoutRegressor(RegressorMixin, _DropoutEstimator):  # type: ignore[misc]
    """MLP regressor with dropout noise and a learned observation noise.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int
        Widths of the hidden ReLU layers, ``(50,)``.
    method : {"variational", "mc", "gaussian", "concrete"}
        Learned variational dropout (the default), fixed Bernoulli (MC)
        dropout, fixed Gaussian dropout or concrete dropout with learned
        rates (see the module docstring).
    p : float or None
        The fixed rate for "mc"/"gaussian", the initial rate for "variational"
        and "concrete" (0.05); None: the method's default in
        :data:`DEFAULT_P` (0.05, and 0.1 for "concrete").
    min_p : float
        "concrete" only: a floor under the learned rates, in [0, ``p``)
        (see :class:`bayesdrop.nn.ConcreteDropout`); 0 by default (the regressor's default method is "variational").
    input_scaling : {"column", "global", "auto"}
        How the inputs are standardised: each column by its own standard
        deviation (``"column"``, the default), or every column by one
        standard deviation pooled over all of them (``"global"``), for
        features in one unit such as pixels, where a column that is almost
        constant in the training rows (an image's border) would otherwise
        divide by a tiny deviation and send a new image into the network at
        hundreds of deviations; ``"auto"`` picks ``"global"`` when the columns
        share one scale (see :func:`bayesdrop.mlp.one_scale`; the
        classifier's default). On kin8nm, the one UCI set where it pools,
        pooling lowered the validation log-likelihood (-0.017 ± 0.013 over
        5 splits, ``benchmarks/regressor_scaling_validation.md``), so the
        regressor keeps ``"column"``.
    heteroscedastic : bool
        Learn a per-input noise (second output of log-variances; the default)
        or, with False, one noise for all inputs.
    min_noise_std : float
        A smooth floor under the per-input noise std, in units of the
        target's standard deviation (see :class:`bayesdrop.Gaussian`); 0: none.
    epochs, lr, batch_size, weight_decay
        Training options of :func:`bayesdrop.fit` (400 epochs, lr 0.01, batch 128).
    kl_warmup_epochs : int or None
        Epochs over which the KL weight rises to 1; None: half of ``epochs``
        for "variational", 0 otherwise.
    early_stopping : bool or "auto"
        Hold out ``validation_fraction`` of the training rows, stop after
        ``n_iter_no_change`` epochs without a lower validation NLL (of the MC
        predictive, 10 samples, the same draws every epoch) and restore the
        best epoch's weights. "auto" (the default): on from
        :data:`AUTO_MIN_ROWS` (1,000) rows, off below (on small data the held-out
        rows cost more than the stopping gains; ``benchmarks/learned_noise.md``).
    validation_fraction : float
        In (0, 1): the share of rows held out (0.1), drawn with ``random_state``.
    n_iter_no_change : int
        Patience in epochs (10), counted from the end of the KL warm-up.
    temperature_scaling : bool or "auto"
        After training, fit a temperature on the validation rows by the MC
        predictive's NLL: the noise standard deviation is multiplied by it (std scaling,
        :func:`bayesdrop.calibrate.fit_noise_scale`).
        "auto" (the default): on from :data:`AUTO_TEMPERATURE_ROWS` (10,000)
        rows, a validation split of at least 1,000 at the default fraction (a
        temperature fitted on a few rows is unreliable: on a small split a
        classifier gets all right it runs to its lower bound).
    num_samples : int
        MC samples T for prediction (100).
    random_state : int, RandomState or None
        Seeds initialisation, training and prediction.
    device : str, torch.device or None
        Where training runs (``"cuda"`` for a GPU); None (the default): the
        CPU. The fitted model comes back to the CPU, where it predicts and
        is saved. CUDA draws some noise with its own generator, so one seed
        can give other (equally distributed) results there than on the CPU.
    progress : bool
        Show a progress bar while fitting.

    Attributes
    ----------
    model_ : nn.Module
        Raw inputs to means and log-variances in the target's units.
    history_ : History
    n_iter_ : int
        Epochs run.
    best_epoch_ : int or None
        The restored epoch under early stopping.
    validation_scores_ : list of float
        Validation NLL of the MC predictive (10 samples) per epoch (empty
        without a validation split).
    temperature_ : float
        The noise std's factor (1.0 without temperature scaling).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(80, 2)); y = X[:, 0] + 0.1 * X[:, 1]
    >>> reg = DropoutRegressor(epochs=20, random_state=0).fit(X, y)
    >>> mean, std = reg.predict(X[:3], return_std=True)
    >>> mean.shape, bool((std > 0).all())
    ((3,), True)
    """

    # size: scikit-learn reads an estimator's parameters from its __init__ signature, one flat keyword each.
    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (50,),
        method: Method = "variational",
        p: float | None = 0.05,
        *,
        min_p: float = 0.0,
        input_scaling: Scaling = "column",
        heteroscedastic: bool = True,
        min_noise_std: float = 0.0,
        epochs: int = 400,
        lr: float = 1e-2,
        batch_size: int = 128,
        weight_decay: float = 0.0,
        kl_warmup_epochs: int | None = None,
        early_stopping: Auto = "auto",
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        temperature_scaling: Auto = "auto",
        num_samples: int = 100,
        random_state: Any = None,
        device: str | torch.device | None = None,
        progress: bool | None = False,
    ) -> None:
        super().__init__(
            hidden_layer_sizes,
            method,
            p,
            min_p=min_p,
            input_scaling=input_scaling,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            weight_decay=weight_decay,
            kl_warmup_epochs=kl_warmup_epochs,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            temperature_scaling=temperature_scaling,
            num_samples=num_samples,
            random_state=random_state,
            device=device,
            progress=progress,
        )
        self.heteroscedastic = heteroscedastic
        self.min_noise_std = min_noise_std

    def fit(self, X: Any, y: Any) -> DropoutRegressor:
        """Fit the network and its noise to ``X`` (n_samples, n_features) and ``y`` (n_samples,).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs.
        y : array-like of shape (n_samples,)
            Real-valued targets (standardised internally).

        Returns
        -------
        DropoutRegressor
            The fitted estimator.
        """
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        y_mean, y_std = standardization(y)
        self.y_mean_, self.y_std_ = float(y_mean), float(y_std)
        lik = self._likelihood()
        self._fit_net(X, (y - self.y_mean_) / self.y_std_, lik, lik.num_outputs)
        return self

    def _likelihood(self) -> Gaussian:
        floor = check_float(self.min_noise_std, "min_noise_std", "DropoutRegressor", low=0.0)
        if floor and not self.heteroscedastic:
            raise ValueError(
                "The 'min_noise_std' parameter of DropoutRegressor is for heteroscedastic=True only. "
                f"Got min_noise_std={self.min_noise_std} with heteroscedastic=False."
            )
        return Gaussian(heteroscedastic=bool(self.heteroscedastic), min_noise_std=floor)

    def _moments(self, X: Any, num_samples: int | None = None) -> tuple[Tensor, Tensor]:
        out = self._samples(X, num_samples)  # (T, N, 2): mean, log-variance
        return out[..., 0], out[..., 1]

    def predict(self, X: Any, return_std: bool = False, return_interval: float | None = None) -> Any:
        """MC predictive mean; with ``return_std`` also the total predictive std; with ``return_interval`` an interval.

        The variance is the variance of the sampled means (ddof 0, epistemic)
        plus the mean noise variance (aleatoric), as GaussianProcessRegressor's
        ``return_std``. Both options pass through a ``Pipeline``
        (``pipe.predict(X, return_interval=0.9)``), which forwards ``predict``'s
        keyword arguments to its last step.

        Parameters
        ----------
        X : array-like (n_samples, n_features)
        return_std : bool
            Also return the predictive standard deviation.
        return_interval : float, optional
            A level in (0, 1): also return the lower and upper ends of the
            central interval mean ± z σ (see :meth:`predict_interval`).

        Returns
        -------
        mean : ndarray (n_samples,)
        std : ndarray (n_samples,)
            With ``return_std``.
        lower, upper : ndarray (n_samples,)
            With ``return_interval``, after ``std`` when both are asked.
        """
        level = None
        if return_interval is not None:
            level = check_float(return_interval, "return_interval", "DropoutRegressor.predict", low=0.0, high=1.0,
                                low_open=True, high_open=True)  # fmt: skip
        mu, log_var = self._moments(X)
        mean = mu.mean(0).numpy()
        if not return_std and level is None:
            return mean
        std = (mu.var(0, unbiased=False) + log_var.exp().mean(0)).sqrt().numpy()
        out: tuple[Any, ...] = (mean, std) if return_std else (mean,)
        if level is not None:
            z = NormalDist().inv_cdf(0.5 + level / 2)
            out = (*out, mean - z * std, mean + z * std)
        return out

    def predict_interval(self, X: Any, level: float = 0.95) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        """Central interval mean ± z σ of the Gaussian approximation of the predictive.

        Parameters
        ----------
        X : array-like (n_samples, n_features)
        level : float
            In (0, 1).

        Returns
        -------
        lower, upper : ndarray (n_samples,)
        """
        level = check_float(level, "level", "predict_interval", low=0.0, high=1.0, low_open=True, high_open=True)
        _, lower, upper = self.predict(X, return_interval=level)
        return lower, upper

    def sample_predictive(self, X: Any, num_samples: int | None = None) -> npt.NDArray[Any]:
        """Draws ``(num_samples, N)`` of y: a sampled mean plus its observation noise.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs.
        num_samples : int, optional
            T; defaults to the estimator's ``num_samples``.

        Returns
        -------
        ndarray of shape (num_samples, n_samples)
            Samples of y in the targets' units.
        """
        mu, log_var = self._moments(X, num_samples)
        gen = torch.Generator()
        seed = self._seed(2)
        gen.manual_seed(seed_or_draw(seed))
        eps = torch.randn(mu.shape, generator=gen, dtype=mu.dtype)
        out: npt.NDArray[Any] = (mu + log_var.mul(0.5).exp() * eps).numpy()
        return out


class DropoutClassifier(ClassifierMixin, _DropoutEstimator):  # type: ignore[misc]
    """MLP classifier with dropout noise; probabilities are MC averages of softmaxes.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int
        Widths of the hidden ReLU layers, ``(50,)``.
    method : {"concrete", "variational", "mc", "gaussian"}
        Concrete dropout with learned rates (the default), learned variational
        dropout, fixed Bernoulli (MC) dropout or fixed Gaussian dropout (see
        the module docstring).
    p : float or None
        The fixed rate for "mc"/"gaussian", the initial rate for "concrete"
        and "variational"; None (the default): the method's own
        (:data:`DEFAULT_P`: 0.05, and 0.1 for "concrete").
    min_p : float
        "concrete" only: a floor under the learned rates, in [0, ``p``)
        (see :class:`bayesdrop.nn.ConcreteDropout`); :data:`MIN_P` (0.05, the
        fixed rate of "mc") by default: with many rows the learned rates
        otherwise collapse towards 0 and the network overfits. The initial
        rate 0.1 and this floor were chosen together on validation data with
        pooled inputs (``benchmarks/learned_noise.md``, section 6).
    input_scaling : {"column", "global", "auto"}
        How the inputs are standardised: each column by its own standard
        deviation (``"column"``), or every column by one
        standard deviation pooled over all of them (``"global"``), for
        features in one unit such as pixels, where a column that is almost
        constant in the training rows (an image's border) would otherwise
        divide by a tiny deviation and send a new image into the network at
        hundreds of deviations; ``"auto"`` (the default) picks ``"global"``
        when the columns share one scale (see :func:`bayesdrop.mlp.one_scale`:
        pixels do, tabular features in different units do not). Chosen on
        validation data: on digits and MNIST 1,000 and 5,000 the pooled
        deviation lowered the mean NLL of every method measured; on the test
        splits, of 25 of 26 rows (``benchmarks/learned_noise.md``, section 5).
    epochs, lr, batch_size, weight_decay
        Training options of :func:`bayesdrop.fit` (200 epochs, lr 0.003, batch 64).
    kl_warmup_epochs : int or None
        Epochs over which the KL weight rises to 1; None: half of ``epochs``
        for "variational", 0 otherwise.
    early_stopping : bool or "auto"
        Hold out ``validation_fraction`` of the training rows, stop after
        ``n_iter_no_change`` epochs without a lower validation NLL (of the MC
        predictive, 10 samples, the same draws every epoch) and restore the
        best epoch's weights. "auto" (the default): on from
        :data:`AUTO_MIN_ROWS` (1,000) rows, off below (on small data the held-out
        rows cost more than the stopping gains; ``benchmarks/learned_noise.md``).
    validation_fraction : float
        In (0, 1): the share of rows held out (0.1), drawn with ``random_state``.
    n_iter_no_change : int
        Patience in epochs (10), counted from the end of the KL warm-up.
    temperature_scaling : bool or "auto"
        After training, fit a temperature on the validation rows by the MC
        predictive's NLL: the logits are divided by it (Guo et al. 2017,
        :func:`bayesdrop.calibrate.fit_temperature`).
        "auto" (the default): on from :data:`AUTO_TEMPERATURE_ROWS` (10,000)
        rows, a validation split of at least 1,000 at the default fraction (a
        temperature fitted on a few rows is unreliable: on a small split a
        classifier gets all right it runs to its lower bound).
    num_samples : int
        MC samples T for prediction (100).
    random_state : int, RandomState or None
        Seeds initialisation, training and prediction.
    device : str, torch.device or None
        Where training runs (``"cuda"`` for a GPU); None (the default): the
        CPU. The fitted model comes back to the CPU, where it predicts and
        is saved. CUDA draws some noise with its own generator, so one seed
        can give other (equally distributed) results there than on the CPU.
    progress : bool
        Show a progress bar while fitting.

    Attributes
    ----------
    classes_ : ndarray
    model_ : nn.Module
        Raw inputs to calibrated logits.
    history_ : History
    n_iter_ : int
        Epochs run.
    best_epoch_ : int or None
        The restored epoch under early stopping.
    validation_scores_ : list of float
        Validation NLL of the MC predictive (10 samples) per epoch (empty
        without a validation split).
    temperature_ : float
        The logits' temperature (1.0 without temperature scaling).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(60, 2)); y = (X[:, 0] > 0).astype(int)
    >>> clf = DropoutClassifier(epochs=20, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """

    # size: scikit-learn reads an estimator's parameters from its __init__ signature, one flat keyword each.
    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (50,),
        method: Method = "concrete",
        p: float | None = None,
        *,
        min_p: float = MIN_P,
        input_scaling: Scaling = "auto",
        epochs: int = 200,
        lr: float = 3e-3,
        batch_size: int = 64,
        weight_decay: float = 0.0,
        kl_warmup_epochs: int | None = None,
        early_stopping: Auto = "auto",
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        temperature_scaling: Auto = "auto",
        num_samples: int = 100,
        random_state: Any = None,
        device: str | torch.device | None = None,
        progress: bool | None = False,
    ) -> None:
        super().__init__(
            hidden_layer_sizes,
            method,
            p,
            min_p=min_p,
            input_scaling=input_scaling,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            weight_decay=weight_decay,
            kl_warmup_epochs=kl_warmup_epochs,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            temperature_scaling=temperature_scaling,
            num_samples=num_samples,
            random_state=random_state,
            device=device,
            progress=progress,
        )

    def fit(self, X: Any, y: Any) -> DropoutClassifier:
        """Fit the network to ``X`` and class labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs.
        y : array-like of shape (n_samples,)
            Class labels (any values that ``numpy.unique`` sorts).

        Returns
        -------
        DropoutClassifier
            The fitted estimator.
        """
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        self.y_mean_, self.y_std_ = 0.0, 1.0
        self._fit_net(X, encoded.astype(np.int64), Categorical(), max(len(self.classes_), 2))
        return self

    def sample_predictive(self, X: Any, num_samples: int | None = None) -> npt.NDArray[Any]:
        """Class-probability samples ``(num_samples, N, K)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs.
        num_samples : int, optional
            T; defaults to the estimator's ``num_samples``.

        Returns
        -------
        ndarray of shape (num_samples, n_samples, n_classes)
            The softmax probabilities of every MC sample.
        """
        out: npt.NDArray[Any] = torch.softmax(self._samples(X, num_samples), -1).numpy()
        return out

    def predict_proba(self, X: Any) -> npt.NDArray[Any]:
        """MC predictive: the mean of the per-sample softmax probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Class probabilities, columns in the order of ``classes_``.
        """
        check_is_fitted(self, "model_")
        probs = self.sample_predictive(X).mean(0)
        if len(self.classes_) == 1:
            return np.ones((probs.shape[0], 1))
        out: npt.NDArray[Any] = probs
        return out

    def predict(self, X: Any) -> npt.NDArray[Any]:
        """The class with the largest MC predictive probability.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        probs = self.predict_proba(X)
        out: npt.NDArray[Any] = self.classes_[probs.argmax(1)]
        return out


def from_state(state: dict[str, Any]) -> DropoutRegressor | DropoutClassifier:
    """Rebuild a fitted estimator from :meth:`to_state`'s dictionary (see :mod:`bayesdrop.model_file`).

    Parameters
    ----------
    state : dict
        What ``to_state`` returned (a model file's contents).

    Returns
    -------
    DropoutRegressor or DropoutClassifier
    """
    from .model_file import estimator_from_state

    return estimator_from_state(state)
