"""``make_audit_run``: a constructed `nas audit` run whose signals agree with the reference by construction.

Every panel member ``i`` has a latent quality ``q_i`` and a latent interference ``p_i`` (standard normal,
independent). At a planted fidelity ``f`` the member's

- accuracy is ``f.base + 0.02·q_i + f.noise·ε`` (ε standard normal, fresh per member and fidelity), and
- interference (the run's interference objective, polysemanticity by default) is
  ``0.6 + 0.05·p_i + 2.5·f.noise·ε'``,

so a fidelity with a small ``noise`` ranks the members as the latent does and a large one barely does
(accuracy correlation with the latent = 0.02 / sqrt(0.02² + noise²)). A copy (``twin_of``: a bf16 twin, or
with noise 0 a perfect signal) takes the named fidelity's values plus ``noise``, or a random permutation of
them (``shuffled``). Each zero-cost proxy is
``w·z(q_i) + sqrt(1 − w²)·ε`` for its planted weight ``w`` in [−1, 1] (``proxies``): correlation ``w`` with
the latent quality, negative for an anti-correlated proxy. Params are nearly constant (0.97–1.0 × 1.5M,
independent of everything); MACs are random (independent of everything). A ``(panel_index, fidelity)``
listed in ``failed`` is recorded as a diverged trial without accuracy or interference (its zero-cost
scores are kept: they are computed at initialisation, before training).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.fidelity import Fidelity, fidelity_from_options
from nas.objectives import ZERO_COST_NAMES, Objective, default_direction
from nas.run import RunStore, TrialRecord
from nas.space.architecture import Architecture

_BLOCKS = ("basic", "bottleneck", "inverted", "separable", "convnext", "sandglass", "nodepth")
_ACTIVATIONS = ("relu", "gelu", "silu", "hardswish", "relu2", "starrelu", "solu")
_NORMS = ("bn", "ln")
BUDGET = 1_500_000
DIVERGED = "training diverged at step 12: loss is nan"
NOT_FINITE = "non-finite objective polysemanticity: layer 'stages.3.1': non-finite activations"
CHANCE = 0.1  # the accuracy of a network that trained to the end with non-finite activations


@dataclass(frozen=True)
class PlantedFidelity:
    """One fidelity of a constructed audit: its name, how noisy its results are, and what it costs.

    The name is a fidelity as the search names it (``quick``, ``quick+epochs=1,train_images=1280``,
    ``quick+precision=bf16``): its fields are that preset with those settings (``nas.fidelity``).
    """

    name: str
    noise: float = 0.01  # accuracy noise (sd) around base + 0.02 · latent quality
    wall_s: float = 30.0  # seconds per evaluation (±10 %)
    base: float = 0.85  # accuracy of an average member
    twin_of: str | None = None  # a copy of the named fidelity's values + noise (a bf16 twin; noise 0: a perfect copy)
    shuffled: bool = False  # a twin whose values are the twin's, permuted across members

    @property
    def fidelity(self) -> Fidelity:
        preset, _, settings = self.name.partition("+")
        items = [kv.replace("=None", "=null") for kv in settings.split(",") if kv]
        return dataclasses.replace(fidelity_from_options(preset, items), name=self.name)


REFERENCE = PlantedFidelity("standard+epochs=2,train_images=None", noise=0.002, wall_s=600.0, base=0.9)
DEFAULT_FIDELITIES: tuple[PlantedFidelity, ...] = (
    REFERENCE,
    PlantedFidelity("quick", noise=0.006, wall_s=40.0),  # good but 80 CPU-s: above a 40 CPU-s limit
    PlantedFidelity("quick+epochs=1,train_images=1280", noise=0.04, wall_s=8.0, base=0.75),  # cheap and poor
)
DEFAULT_PROXIES: dict[str, float] = {"naswot": 0.9, "synflow": 0.5, "snip": 0.0, "grad_norm": -0.8, "jacob_cov": 0.3}
DEFAULT_ZC_SECONDS: dict[str, float] = {"naswot": 0.4, "synflow": 0.6, "snip": 0.3, "grad_norm": 0.3,
                                        "jacob_cov": 0.8}


def audit_panel(n: int) -> list[str]:
    """``n`` distinct valid architecture strings cycling through block families, activations and norms."""
    out = []
    for i in range(n):
        block, act, norm = _BLOCKS[i % 7], _ACTIVATIONS[(i // 7 + i) % 7], _NORMS[(i // 2) % 2]
        out.append(f"stem_c16_k3_s1/{block}_d1_s1_c{16 + 8 * i}_e4_k3_{act}_dw_{norm}/"
                   f"{block}_d2_s2_c32_e4_k3_{act}_dw_{norm}")
    return out


def make_audit_run(
    path: Path | str,
    *,
    n: int = 24,
    fidelities: Sequence[PlantedFidelity] = DEFAULT_FIDELITIES,
    proxies: Mapping[str, float] | None = None,
    zc_seconds: Mapping[str, float] | None = None,
    seed: int = 0,
    failed: Iterable[tuple[int, str]] = (),
    diverged_after_training: Iterable[tuple[int, str]] = (),
    interference: str | None = "polysemanticity",
    cpus_per_trial: int | None = 2,
    overflow_worst: Mapping[str, int] | None = None,
) -> RunStore:
    """Write a constructed audit run (see the module docstring) through RunStore; the first fidelity is the reference.

    ``proxies`` maps zero-cost names to planted correlations with the latent quality (default
    :data:`DEFAULT_PROXIES`; a name left out gets 0). ``interference`` None writes an accuracy-only audit.
    ``failed`` (member, fidelity) pairs fail before measuring (no accuracy); ``diverged_after_training`` ones fail
    after it, as a network with non-finite activations does: accuracy at chance, no interference.
    ``overflow_worst`` maps a zero-cost name to k: the k members of lowest latent quality score it non-finite
    (recorded as null with its timing, as synflow's overflow is).
    """
    from nas.testing import make_config

    rng = np.random.default_rng(seed)
    weights = {name: 0.0 for name in ZERO_COST_NAMES} | dict(DEFAULT_PROXIES if proxies is None else proxies)
    seconds = DEFAULT_ZC_SECONDS | dict(zc_seconds or {})
    failed_set, late_set = set(failed), set(diverged_after_training)
    panel = audit_panel(n)
    quality, latent_inter = rng.normal(size=n), rng.normal(size=n)
    z = (quality - quality.mean()) / (quality.std() or 1.0) if n else quality
    zc = {name: w * z + np.sqrt(max(0.0, 1.0 - w * w)) * rng.normal(size=n) for name, w in weights.items()}
    for name, k in (overflow_worst or {}).items():
        zc[name][np.argsort(quality)[:k]] = np.nan
    params = (BUDGET * rng.uniform(0.97, 1.0, size=n)).astype(int)
    macs = (params * rng.uniform(20, 80, size=n)).astype(int)

    values: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for f in fidelities:
        if f.twin_of is not None:
            acc, inter = values[f.twin_of]
            if f.shuffled:
                order = rng.permutation(n)
                acc, inter = acc[order], inter[order]
            values[f.name] = (acc + f.noise * rng.normal(size=n), inter + f.noise * rng.normal(size=n))
        else:
            values[f.name] = (f.base + 0.02 * quality + f.noise * rng.normal(size=n),
                              0.6 + 0.05 * latent_inter + 2.5 * f.noise * rng.normal(size=n))

    objectives = [Objective("accuracy", "maximize")]
    if interference is not None:
        objectives.append(Objective(interference, default_direction(interference)))
    design = {
        "panel": panel,
        "strata": ["block", "activation", "norm"],
        "reference": fidelities[0].name,
        "fidelities": [f.fidelity.to_dict() for f in fidelities],
    }
    store = RunStore(path)
    store.root.mkdir(parents=True, exist_ok=True)
    store.write_config(make_config(
        store.root.name, kind="audit", sampler="audit", objectives=objectives, budget=None, design=design,
        trials=n * len(fidelities), seed=seed, cpus_per_trial=cpus_per_trial, command="nas audit (fixture)",
        fidelity=fidelities[0].fidelity,
    ))
    records = []
    for i, arch in enumerate(panel):
        arch_hash = Architecture.parse(arch).semantic_hash
        for f in fidelities:
            acc, inter = values[f.name]
            row: dict[str, object] = {
                "trial_id": len(records), "status": "complete", "arch": arch, "arch_hash": arch_hash,
                "fidelity": f.name, "params": int(params[i]), "macs": int(macs[i]), "seed": seed,
                "epochs": f.fidelity.epochs, "panel_index": i,
                "wall_s": float(f.wall_s * rng.uniform(0.9, 1.1)), "precision": f.fidelity.precision,
                "accuracy": float(acc[i]),
            }
            if interference is not None:
                row[interference] = float(inter[i])
            for name in ZERO_COST_NAMES:
                row[f"zc_{name}"] = float(zc[name][i]) if np.isfinite(zc[name][i]) else None
                row[f"zc_{name}_s"] = float(seconds[name] * rng.uniform(0.9, 1.1))
            row["zc_s"] = sum(float(row[f"zc_{name}_s"]) for name in ZERO_COST_NAMES)  # type: ignore[arg-type]
            if (i, f.name) in failed_set:
                row.update(status="failed", reason=DIVERGED, accuracy=None)
                if interference is not None:
                    row[interference] = None
            if (i, f.name) in late_set:
                row.update(status="failed", reason=NOT_FINITE, accuracy=CHANCE)
                if interference is not None:
                    row[interference] = None
            records.append(TrialRecord.from_dict(row))
    store.write_records(records)
    return store
