"""RunConfig: the resolved settings of a run, as stored in ``results/<run>/run.yaml`` (schema version 1).

Search, audit and study runs share one schema; ``kind`` says which driver wrote it and ``design``
holds that driver's own plan (an audit's panel and fidelities, a study's factors), validated by the
driver. Reading is strict: an unknown key, a missing key or a value of the wrong type raises
``RunStoreError`` naming the key path, so an old or hand-edited run.yaml is refused with one line
instead of misread.

Keys (every one is written; ``null`` where it does not apply)::

    version         schema version (1)
    kind            search | audit | study | compare
    name            run (and Optuna study) name
    created         ISO time the run was created
    space_file      the space file it was read from (for the record; the space itself is below)
    space_name      the space's name
    space           the space as parsed (raw mapping), so a run does not depend on the file staying put
    budget          {params, tolerance, divisor} or null (absolute widths)
    objectives      [{name, direction}, ...]
    sampler         nsga2 | tpe | gp | random (search); the driver's own word otherwise
    population      NSGA-II population or null
    fidelity        the training recipe (nas.fidelity.Fidelity fields)
    scheduler       asha or null
    workers         trials at a time (null: CPUs / cpus_per_trial)
    cpus_per_trial  CPUs and torch threads per trial (null: 2)
    gpus_per_trial  GPUs per trial
    address         Ray cluster address or null (local Ray)
    dataset         fashion-mnist | cifar10 | imagefolder | synthetic
    data_dir        data folder or null (the data set's default)
    resolution      input size in pixels or null (native)
    trials          trial count asked for
    seed            seed of the sampler, the panel or the study, and of training
    storage         Optuna storage URL with any password masked, or null (study.db in the run folder)
    versions        package versions that wrote the run
    git_sha         commit of bottleneck-nas, or null
    command         the command line, password masked
    design          the driver's plan (null for a search)
    prescreen       zero-cost proxy of the search's pre-screen (naswot, synflow, snip, grad_norm, jacob_cov), or null
    prescreen_pool  candidates scored per trial by the pre-screen (1 or more), or null (no pre-screen)
    warm_start      the earlier runs whose finished trials the study was told at its start, or null
    latency         how the latency objective is measured: {threads: <n or null: the trial's>, batch: <n>}, or
                    null (no latency objective)
    tracking        trackers of `nas search --tracking` (tensorboard, mlflow), or null
    tracking_uri    MLflow tracking URI given with --tracking-uri (password masked), or null (the run's mlflow.db)
    constraints     the study's constraints (nas.constraints): {trained: null, macs: <ceiling>,
                    activation_memory: <ceiling>}, or null (a run that tells failures as FAIL)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from nas.errors import NASError, RunStoreError, shown
from nas.fidelity import Fidelity
from nas.objectives import Objective
from nas.space import Budget

SCHEMA_VERSION = 1
RUN_KINDS = ("search", "audit", "study", "compare")


@dataclass
class RunConfig:
    """The settings of one run (see the module docstring for every key)."""

    kind: str
    name: str
    created: str
    space_file: str | None
    space_name: str
    space: dict[str, Any]
    budget: Budget | None
    objectives: list[Objective]
    sampler: str
    fidelity: Fidelity
    dataset: str
    trials: int
    seed: int
    population: int | None = None
    scheduler: str | None = None
    workers: int | None = None
    cpus_per_trial: int | None = None
    gpus_per_trial: float = 0.0
    address: str | None = None
    data_dir: str | None = None
    resolution: int | None = None
    storage: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    git_sha: str | None = None
    command: str = ""
    design: dict[str, Any] | None = None
    prescreen: str | None = None
    prescreen_pool: int | None = None
    warm_start: list[str] | None = None
    constraints: dict[str, int | None] | None = None
    tracking: list[str] | None = None
    tracking_uri: str | None = None
    latency: dict[str, int | None] | None = None
    version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.version}
        for f in dataclasses.fields(self):
            if f.name == "version":
                continue
            value = getattr(self, f.name)
            if f.name == "budget":
                value = None if value is None else {"params": value.params, "tolerance": value.tolerance,
                                                    "divisor": value.divisor}
            elif f.name == "objectives":
                value = [o.to_dict() for o in value]
            elif f.name == "fidelity":
                value = value.to_dict()
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "run.yaml") -> RunConfig:
        """Strictly read a run.yaml mapping; RunStoreError names the key path of the first problem."""
        if not isinstance(data, dict):
            raise RunStoreError(f"{where} should hold a mapping of run settings, got {type(data).__name__}")
        if "version" not in data:
            raise RunStoreError(f"{where} has no 'version' key: it was written by an older bottleneck-nas or by hand "
                                f"(schema version {SCHEMA_VERSION} is expected); re-run the search to analyse it")
        if data["version"] != SCHEMA_VERSION:
            raise RunStoreError(f"{where}: version {shown(data['version'])} is not the schema this bottleneck-nas "
                                f"reads "
                                f"({SCHEMA_VERSION})")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = [k for k in data if k not in names]
        if unknown:
            import difflib

            near = difflib.get_close_matches(str(unknown[0])[:100], sorted(names), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else "; no run.yaml has it (nas/run/config.py lists them)"
            raise RunStoreError(f"{where}: unknown key {shown(str(unknown[0]), 40)}{hint}")
        required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        missing = [k for k in required if k not in data]
        if missing:
            raise RunStoreError(f"{where} lacks the key {shown(missing[0])}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            values[key] = _read(key, value, where)
        if values["kind"] not in RUN_KINDS:
            raise RunStoreError(f"{where}: kind {shown(values['kind'])} is not one of {', '.join(RUN_KINDS)}")
        _check_prescreen(values.get("prescreen"), values.get("prescreen_pool"), where)
        if values.get("constraints") is not None:
            from nas.constraints import check_ceilings

            try:
                check_ceilings(values["constraints"])
            except NASError as exc:
                raise RunStoreError(f"{where}: constraints: {exc}") from None
        return cls(**values)


_TYPES: dict[str, tuple[type, ...]] = {
    "kind": (str,), "name": (str,), "created": (str,), "space_file": (str, type(None)), "space_name": (str,),
    "space": (dict,), "sampler": (str,), "dataset": (str,), "trials": (int,), "seed": (int,),
    "population": (int, type(None)), "scheduler": (str, type(None)), "workers": (int, type(None)),
    "cpus_per_trial": (int, type(None)), "gpus_per_trial": (float, int), "address": (str, type(None)),
    "data_dir": (str, type(None)), "resolution": (int, type(None)), "storage": (str, type(None)),
    "versions": (dict,), "git_sha": (str, type(None)), "command": (str,), "design": (dict, type(None)),
    "version": (int,), "prescreen": (str, type(None)), "prescreen_pool": (int, type(None)),
    "warm_start": (list, type(None)), "constraints": (dict, type(None)), "tracking": (list, type(None)),
    "tracking_uri": (str, type(None)), "latency": (dict, type(None)),
}


def _check_prescreen(proxy: str | None, pool: int | None, where: str) -> None:
    """A pre-screen names a zero-cost proxy and a pool of 1 or more candidates, or neither is set."""
    from nas.objectives import ZERO_COST_NAMES

    if (proxy is None) != (pool is None):
        raise RunStoreError(f"{where}: prescreen and prescreen_pool are set together or not at all, got "
                            f"{shown(proxy)} and {shown(pool)}")
    if proxy is not None and proxy not in ZERO_COST_NAMES:
        raise RunStoreError(f"{where}: prescreen {shown(proxy)} is not a zero-cost proxy; one of "
                            f"{', '.join(ZERO_COST_NAMES)}")
    if pool is not None and pool < 1:
        raise RunStoreError(f"{where}: prescreen_pool should be 1 or more, got {shown(pool)}")


_RANGES: dict[str, tuple[int, int]] = {  # what the command line accepts, so a hand-edited run.yaml is held to it too
    "trials": (0, 10**9), "seed": (0, 2**32 - 1), "population": (2, 10**9), "workers": (1, 10**9),
    "cpus_per_trial": (1, 10**9), "gpus_per_trial": (0, 10**6), "resolution": (4, 16_384), "version": (0, 10**9),
}


def _read(key: str, value: Any, where: str) -> Any:
    try:
        if key == "budget":
            return _budget(value, where)
        if key == "objectives":
            if not isinstance(value, list) or not value:
                raise RunStoreError(f"{where}: objectives should be a non-empty list, got {shown(value)}")
            return [Objective.from_dict(o) for o in value]
        if key == "fidelity":
            if not isinstance(value, dict):
                raise RunStoreError(f"{where}: fidelity should be a mapping of training settings, got {shown(value)}")
            return Fidelity.from_dict(value)
    except RunStoreError:
        raise
    except NASError as exc:
        raise RunStoreError(f"{where}: {key}: {exc}") from None
    types = _TYPES[key]
    if isinstance(value, bool) or not isinstance(value, types):
        raise RunStoreError(f"{where}: {key} should be {' or '.join(t.__name__ for t in types)}, got {shown(value)}")
    if key in _RANGES and value is not None and not _RANGES[key][0] <= value <= _RANGES[key][1]:  # NaN fails too
        low, high = _RANGES[key]
        raise RunStoreError(f"{where}: {key} should be from {low:,} to {high:,}, got {shown(value)}")
    return float(value) if key == "gpus_per_trial" else value


def _budget(value: Any, where: str) -> Budget | None:
    from nas.space.budget import check_divisor, check_tolerance

    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"params", "tolerance", "divisor"}:
        raise RunStoreError(f"{where}: budget should be a mapping {{params, tolerance, divisor}} or null, "
                            f"got {shown(value)}")
    params = value["params"]
    if isinstance(params, bool) or not isinstance(params, int) or params < 1:
        raise RunStoreError(f"{where}: budget.params should be a positive integer, got {shown(params)}")
    try:
        return Budget(params, check_tolerance(value["tolerance"]), check_divisor(value["divisor"]))
    except NASError as exc:
        raise RunStoreError(f"{where}: budget: {exc}") from None
