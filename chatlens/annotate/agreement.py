"""Inter-coder agreement: Krippendorff's alpha, Cohen's kappa, per-measure reports, disagreements.

Alpha follows Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": values are
tallied in a coincidence matrix over *pairable* units (units with at least two values; missing
values are skipped), and ``alpha = 1 - (n - 1) · Σ o_ck δ_ck / Σ n_c n_k δ_ck``. Alpha is
undefined (NaN; ``None`` in reports) when nothing is pairable or all pairable values are equal.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol

import numpy as np

from chatlens.errors import UsageError

Level = Literal["nominal", "ordinal", "interval", "ratio"]
Triple = tuple[Hashable, Hashable, Any]  # (unit, coder, value)


class LabelLike(Protocol):
    """Anything with a label's fields (e.g. :class:`chatlens.annotate.LabelRecord`)."""

    @property
    def uid(self) -> str: ...
    @property
    def measure(self) -> str: ...
    @property
    def annotator(self) -> str: ...
    @property
    def value(self) -> str: ...


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v == ""


def _by_unit(data: Mapping[Any, Sequence[Any]] | Iterable[Triple]) -> list[list[Any]]:
    """Values per unit; from triples, a coder's later value for a unit replaces the earlier."""
    if isinstance(data, Mapping):
        return [[v for v in vs if not _missing(v)] for vs in data.values()]
    coded: dict[Hashable, dict[Hashable, Any]] = {}
    for unit, coder, value in data:
        if not _missing(value):
            coded.setdefault(unit, {})[coder] = value
    return [list(d.values()) for d in coded.values()]


def _delta(level: Level, values: list[Any], n_c: np.ndarray) -> np.ndarray:
    if level == "nominal":
        return np.asarray(1.0 - np.eye(len(values)), dtype=np.float64)
    try:
        x = np.array([float(v) for v in values])
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{level} alpha needs numeric values: {exc}") from None
    if level == "interval":
        return np.asarray(np.subtract.outer(x, x) ** 2, dtype=np.float64)
    if level == "ratio":
        s = np.add.outer(x, x)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(np.where(s != 0, (np.subtract.outer(x, x) / s) ** 2, 0.0))
    if level == "ordinal":  # values are sorted: δ_ck = (Σ_{g=c..k} n_g - (n_c + n_k)/2)²
        cum = np.concatenate([[0.0], np.cumsum(n_c)])
        i, j = np.meshgrid(np.arange(len(values)), np.arange(len(values)), indexing="ij")
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        return np.asarray((cum[hi + 1] - cum[lo] - (n_c[i] + n_c[j]) / 2.0) ** 2,
                          dtype=np.float64)
    raise UsageError(f"unknown alpha level {level!r}: use nominal, ordinal, interval or ratio")


def krippendorff_alpha(data: Mapping[Any, Sequence[Any]] | Iterable[Triple],
                       level: Level = "nominal") -> float:
    """Krippendorff's alpha over ``{unit: [values…]}`` or ``(unit, coder, value)`` triples.

    ``None``, NaN and ``""`` are missing. Units with fewer than two values are not pairable and
    do not count. Returns NaN when alpha is undefined.
    """
    units = [vs for vs in _by_unit(data) if len(vs) >= 2]
    if not units:
        return math.nan
    distinct = {v for vs in units for v in vs}
    values = sorted(distinct, key=repr) if level == "nominal" else sorted(distinct)
    index = {v: i for i, v in enumerate(values)}
    o = np.zeros((len(values), len(values)))
    for vs in units:
        counts = Counter(index[v] for v in vs)
        for c, nc in counts.items():
            for k, nk in counts.items():
                o[c, k] += nc * (nk - (c == k)) / (len(vs) - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    delta = _delta(level, values, n_c)
    expected = float((np.outer(n_c, n_c) * delta).sum())
    if expected == 0.0:
        return math.nan
    return float(1.0 - (n - 1.0) * float((o * delta).sum()) / expected)


def cohen_kappa(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Cohen's kappa of two coders over the same items (pairs with a missing value dropped).

    ``kappa = (p_o - p_e) / (1 - p_e)``; NaN when no pairs remain or ``p_e = 1``.
    """
    if len(a) != len(b):
        raise UsageError(f"cohen_kappa needs equal lengths, got {len(a)} and {len(b)}")
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if not (_missing(x) or _missing(y))]
    if not pairs:
        return math.nan
    n = len(pairs)
    p_o = sum(x == y for x, y in pairs) / n
    ca, cb = Counter(x for x, _ in pairs), Counter(y for _, y in pairs)
    p_e = sum(ca[v] * cb[v] for v in ca) / (n * n)
    if p_e >= 1.0:
        return math.nan
    return float((p_o - p_e) / (1.0 - p_e))


def _by_measure(labels: Iterable[LabelLike | tuple[str, Hashable, Hashable, Any]]
                ) -> dict[str, dict[Hashable, dict[Hashable, Any]]]:
    """measure → unit → coder → value (later labels replace earlier ones; missing dropped)."""
    out: dict[str, dict[Hashable, dict[Hashable, Any]]] = {}
    for item in labels:
        if isinstance(item, tuple):
            measure, unit, coder, value = item
        else:
            measure, unit, coder, value = item.measure, item.uid, item.annotator, item.value
        if not _missing(value):
            out.setdefault(measure, {}).setdefault(unit, {})[coder] = value
    return out


def _none_if_nan(x: float) -> float | None:
    return None if math.isnan(x) else x


def agreement_report(labels: Iterable[LabelLike | tuple[str, Hashable, Hashable, Any]]
                     ) -> dict[str, dict[str, Any]]:
    """Agreement per measure from labels or ``(measure, unit, coder, value)`` tuples.

    Each entry: ``n_labels``, ``n_units``, ``n_coders``, ``pairable_units`` (units with two or
    more coders), ``alpha`` (nominal), ``kappa`` (only with exactly two coders, over the units
    both coded), ``percent_agreement`` (share of pairable units where all coders agree) and
    ``disagreements`` (count). Undefined figures are ``None``.
    """
    report: dict[str, dict[str, Any]] = {}
    for measure, units in sorted(_by_measure(labels).items()):
        coders = sorted({c for d in units.values() for c in d}, key=repr)
        pairable = [d for d in units.values() if len(d) >= 2]
        agree = sum(len(set(d.values())) == 1 for d in pairable)
        kappa: float | None = None
        if len(coders) == 2:
            both = [d for d in pairable if coders[0] in d and coders[1] in d]
            kappa = _none_if_nan(cohen_kappa([d[coders[0]] for d in both],
                                             [d[coders[1]] for d in both]))
        report[measure] = {
            "n_labels": sum(len(d) for d in units.values()),
            "n_units": len(units),
            "n_coders": len(coders),
            "pairable_units": len(pairable),
            "alpha": _none_if_nan(krippendorff_alpha({u: list(d.values())
                                                      for u, d in units.items()})),
            "kappa": kappa,
            "percent_agreement": agree / len(pairable) if pairable else None,
            "disagreements": len(pairable) - agree,
        }
    return report


def disagreements(labels: Iterable[LabelLike | tuple[str, Hashable, Hashable, Any]]
                  ) -> list[dict[str, Any]]:
    """Units whose coders gave different values, for adjudication, sorted by measure and uid.

    Each item: ``{"measure", "uid", "values": {coder: value}}``.
    """
    out = []
    for measure, units in sorted(_by_measure(labels).items()):
        for unit in sorted(units, key=str):
            coded = units[unit]
            if len(set(coded.values())) > 1:
                out.append({"measure": measure, "uid": unit,
                            "values": {c: coded[c] for c in sorted(coded, key=str)}})
    return out
