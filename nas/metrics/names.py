"""Names, directions and one-line descriptions of the interference metrics (torch-free)."""

from __future__ import annotations

# The order is the order of the run store's columns (docs/CONTRACTS.md).
METRIC_NAMES: tuple[str, ...] = ("polysemanticity", "overlap", "outliers", "dead_fraction")

# Every interference metric is better when lower.
METRIC_DIRECTIONS: dict[str, str] = {name: "minimize" for name in METRIC_NAMES}

# The zero-cost proxies (nas.metrics.zero_cost), each higher-better in its natural form; recorded as zc_<name>.
ZERO_COST_NAMES: tuple[str, ...] = ("naswot", "synflow", "snip", "grad_norm", "jacob_cov")

METRIC_DESCRIPTIONS: dict[str, str] = {
    "polysemanticity": "how many classes a channel answers alike (0: one class per channel; higher: many), "
    "mean over probe layers",
    "overlap": "squared cosine overlap of class-mean directions, 0 for a regular simplex, 1 for identical directions",
    "outliers": "excess kurtosis of all activation values of a probe layer (0 for a Gaussian), mean over layers",
    "dead_fraction": "share of channels whose class means are all equal (no class preference), mean over layers",
}
