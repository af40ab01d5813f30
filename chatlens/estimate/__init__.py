"""Prevalence estimators with honest confidence intervals (pure functions over numpy arrays).

- :func:`audit_estimate` — human-coded random sample alone (Wilson, FPC, stratified).
- :func:`ppi_estimate` — model scores everywhere + audit labels (prediction-powered, PPI++).
- :func:`quantify_estimate` — labels from elsewhere (ACC, PACC, EMQ; bootstrap).
- :func:`naive_estimate` — classify-and-count reference (ignores classifier error).
- :func:`difference` / :func:`audit_difference` — two groups or periods.
- :func:`auto_method`, :func:`small_group`, :func:`per_value` — choice, display rule, categories.
"""

from __future__ import annotations

from chatlens.estimate.audit import audit_estimate, fpc_effective_n, wilson_interval
from chatlens.estimate.choose import auto_method, binarize, per_value
from chatlens.estimate.compare import audit_difference, difference
from chatlens.estimate.naive import naive_estimate
from chatlens.estimate.ppi import ppi_estimate, ppi_finite_estimate, ppi_finite_stratified
from chatlens.estimate.quantify import quantify_estimate
from chatlens.estimate.result import (
    MAX_INTERVAL_WIDTH,
    MIN_LABELLED_N,
    Difference,
    Estimate,
    check_bounds,
    small_group,
)

__all__ = [
    "MAX_INTERVAL_WIDTH",
    "MIN_LABELLED_N",
    "Difference",
    "Estimate",
    "audit_difference",
    "audit_estimate",
    "auto_method",
    "binarize",
    "check_bounds",
    "difference",
    "fpc_effective_n",
    "naive_estimate",
    "per_value",
    "ppi_estimate",
    "ppi_finite_estimate",
    "ppi_finite_stratified",
    "quantify_estimate",
    "small_group",
    "wilson_interval",
]
