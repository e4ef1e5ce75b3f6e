"""Calibration and uncertainty metrics (numpy/torch in, floats or arrays out)."""

from .classification import (
    ReliabilityTable,
    accuracy,
    aurc,
    brier,
    classwise_ece,
    ece,
    misclassification_auroc,
    nll,
    reliability_table,
    risk_coverage_curve,
)
from .gap import ensemble_gap, per_example_gap, regression_gap
from .ood import deterministic_scores, mc_scores, ood_detection
from .posterior import compare, wasserstein2
from .regression import (
    crps_gaussian,
    crps_samples,
    gaussian_nll,
    interval_coverage,
    interval_width,
    miscalibration_area,
    mixture_nll,
    regression_calibration_curve,
    rmse,
)
from .selective import selective_accuracy, selective_curve, selective_rmse
from .uncertainty import expected_entropy, mutual_information, predictive_entropy, variation_ratio

__all__ = [
    "ReliabilityTable",
    "accuracy",
    "aurc",
    "brier",
    "classwise_ece",
    "compare",
    "crps_gaussian",
    "crps_samples",
    "deterministic_scores",
    "ece",
    "ensemble_gap",
    "expected_entropy",
    "gaussian_nll",
    "interval_coverage",
    "interval_width",
    "mc_scores",
    "miscalibration_area",
    "misclassification_auroc",
    "mixture_nll",
    "mutual_information",
    "nll",
    "ood_detection",
    "per_example_gap",
    "predictive_entropy",
    "regression_calibration_curve",
    "regression_gap",
    "reliability_table",
    "risk_coverage_curve",
    "rmse",
    "selective_accuracy",
    "selective_curve",
    "selective_rmse",
    "variation_ratio",
    "wasserstein2",
]
