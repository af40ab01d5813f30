"""Which estimator to use (``auto_method``) and per-value estimates for categorical measures."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chatlens.estimate.result import Estimate


def auto_method(has_audit: bool, has_reference: bool = False,
                n_training: int = 0) -> tuple[str, str]:
    """Pick the estimator from the labels available; returns ``(method, reason)``.

    An audit sample of the population itself wins: PPI uses it to correct the model and is
    unbiased whatever the model's errors. Without one, a declared reference set (labels of
    another corpus or period) allows quantification, which relies on the model erring the same
    way in both places, and says so. Training labels and corrections never stand in for an
    audit: they were not drawn at random and the model has learned from them. With neither,
    there is no valid estimate, only the naive figure.
    """
    if has_audit:
        return (
            "ppi",
            "A random audit sample of this population has been coded, so the estimate combines "
            "the model's scores on every message with the audit labels (prediction-powered "
            "inference), which corrects the model's bias and is never less precise than the "
            "audit alone.",
        )
    if has_reference:
        return (
            "quantify",
            "There is no audit sample of this population, only a declared reference set "
            "(labels of another corpus or period), so the model's error rates measured there "
            "adjust its counts here (quantification). The interval is valid only if the model "
            "errs the same way in both; an audit sample removes that assumption.",
        )
    why = (f" The {n_training:,} training labels and corrections cannot serve: they were not "
           "drawn at random, and the model has learned from them." if n_training else "")
    return (
        "naive",
        "No valid estimate yet: label an audit sample (`chatlens sample --kind audit`)." + why +
        " The naive classify-and-count figure ignores the model's errors.",
    )


def binarize(values: NDArray[Any], value: Hashable) -> NDArray[np.float64]:
    """0/1 indicator of ``values == value`` (the binary problem behind one category)."""
    return np.asarray(np.asarray(values, dtype=object) == value, dtype=float)


def per_value(
    estimator: Callable[..., Estimate],
    values: Sequence[Hashable],
    *arrays: Any,
    **kwargs: Any,
) -> dict[Hashable, Estimate]:
    """Estimate every value of a categorical measure as its own binary problem "== value".

    Each positional array is converted per value: a 1-D array of category labels becomes the
    indicator ``== value``; a 2-D array of class probabilities (one column per entry of
    ``values``, in that order) contributes the column of that value. Keyword arguments (``N``,
    ``level``, ...) are passed through unchanged.

    Example: ``per_value(ppi_estimate, ["a", "b"], y_cat, probs_lab, probs_pop)``.
    """
    out: dict[Hashable, Estimate] = {}
    for k, v in enumerate(values):
        conv: list[NDArray[np.float64]] = []
        for arr in arrays:
            a = np.asarray(arr)
            if a.ndim == 2:
                if a.shape[1] != len(values):
                    raise ValueError("probability matrix needs one column per value")
                conv.append(a[:, k].astype(float))
            else:
                conv.append(binarize(a, v))
        out[v] = estimator(*conv, **kwargs)
    return out
