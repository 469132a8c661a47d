"""`nas audit`: train one panel of architectures at several fidelities, to measure how well cheap signals rank them.

The panel comes from a space (stratified so every block family, activation and norm appears; see
:mod:`nas.panel`), from a file of architecture strings (one per line, ``#`` comments), or from a run
folder (its complete trials). Fidelities are presets with ``--set``-style changes, written
``PRESET`` or ``PRESET:FIELD=VALUE,FIELD=VALUE`` (or the name a search gives them,
``PRESET+FIELD=VALUE,...``); the reference comes first. Trial ``f·n + i`` is panel member ``i`` at
fidelity ``f``, so a resumed audit repeats nothing; an evaluation already made (here or in a run
given with ``--reuse``) at the same fidelity and seed is reused, not retrained.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.errors import ConfigError, SpaceError, shown
from nas.fidelity import Fidelity, parse_fidelity
from nas.objectives import DEFAULT_INTERFERENCE, parse_objectives
from nas.panel import DEFAULT_STRATA, stratified_panel
from nas.run import RunConfig, RunStore
from nas.sampling import Shape, Solved, fit
from nas.search.batch import DesignedOptions, Job, new_store, resumed, run_designed, run_jobs
from nas.search.settings import default_space
from nas.space import load_target

DEFAULT_REFERENCE = "standard:epochs=2,train_images=null"
DEFAULT_SIGNALS = (
    "quick",  # the search's proxy: 2,560 images x 2 epochs
    "quick:epochs=1,train_images=5120",  # EcoNAS: more images, fewer epochs, same image-passes
    "quick:epochs=4,train_images=1280",  # the opposite trade at the same cost
    "quick:epochs=1,train_images=1280",  # a quarter of the cost (~10 s per 1.5M net here)
    "quick:precision=bf16",  # the bf16 twin of quick
)
DEFAULT_PANEL = 24
PANEL_MIN = 3  # a rank correlation of two points is always ±1
PANEL_LIMIT = 10_000


@dataclass
class AuditOptions(DesignedOptions):
    """Command-line values of `nas audit` (None: the default, or the run's own on --resume)."""

    panel: str | None = None
    n: int | None = None
    strata: str | None = None
    fidelities: list[str] | None = None
    reference: str | None = None
    reuse: list[str] = field(default_factory=list)


def plan_fidelities(reference: str | None, signals: list[str] | None) -> list[Fidelity]:
    """The reference first, then each signal fidelity once (a repeat or the reference itself is refused)."""
    ref = parse_fidelity(reference or DEFAULT_REFERENCE)
    out = [ref]
    for spec in signals if signals is not None else list(DEFAULT_SIGNALS):
        fid = parse_fidelity(spec)
        if fid.name in (f.name for f in out):
            raise ConfigError(f"fidelity {shown(fid.name)} is named twice (or is the reference); name each once")
        out.append(fid)
    if len(out) < 2:
        raise ConfigError("an audit needs at least one fidelity besides the reference (--fidelity)")
    return out


def plan_panel(opts: AuditOptions, shape: Shape) -> tuple[list[Solved], dict[str, Any]]:
    """The panel's fitted architectures and how it was made (for run.yaml)."""
    if opts.panel is not None and (opts.space_file is not None or opts.n is not None):
        raise ConfigError("give a panel (a file or a run folder) or --space/-n, not both")
    if opts.panel is not None:
        return _panel_from(opts.panel, opts, shape)
    n = DEFAULT_PANEL if opts.n is None else opts.n
    if not PANEL_MIN <= n <= PANEL_LIMIT:
        raise ConfigError(f"-n must be from {PANEL_MIN} to {PANEL_LIMIT:,} (no rank correlation is possible with "
                          f"fewer than {PANEL_MIN} architectures), got {shown(n)}")
    space_file = opts.space_file or default_space()
    target = load_target(space_file, budget=opts.budget, tolerance=opts.tolerance, divisor=opts.divisor)
    if target.space is None:
        raise ConfigError(f"--space must be a space file, got {shown(space_file)}")
    strata = [s.strip() for s in (opts.strata or ",".join(DEFAULT_STRATA)).split(",") if s.strip()]
    panel = stratified_panel(target.space, n, seed=opts.seed or 0, budget=target.budget, shape=shape, strata=strata)
    if len(panel.members) < n:
        raise ConfigError(f"only {len(panel.members)} of {n} panel members could be drawn within the budget "
                          f"(given up: {shown(panel.given_up)}); lower -n or change --budget")
    source = {"space_file": space_file, "space_name": target.space.name, "space": target.space.spec.raw,
              "budget": target.budget, "strata": strata}
    return panel.members, source


def _panel_from(text: str, opts: AuditOptions, shape: Shape) -> tuple[list[Solved], dict[str, Any]]:
    from nas.space.architecture import Architecture

    path = Path(text)
    budget = opts.given_budget()
    try:
        is_dir, is_file = path.is_dir(), path.is_file()
    except (OSError, ValueError):
        is_dir = is_file = False
    if is_dir:
        store = RunStore.open(path)
        config = store.read_config()
        strings = list(dict.fromkeys(r.arch for r in store.records() if r.complete
                                     and r.fidelity == config.fidelity.name))
        where = f"run {store.root}"
    elif is_file:
        try:
            raw = path.read_bytes()
            lines = raw.decode("utf-8").splitlines() if len(raw) <= 4 * 2**20 else None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"panel file {shown(text)} cannot be read: {getattr(exc, 'strerror', None) or exc}") \
                from None
        if lines is None:
            raise ConfigError(f"panel file {shown(text)} is larger than 4 MiB; a panel is a list of architectures")
        strings = [ln.split("#", 1)[0].strip() for ln in lines]
        strings = list(dict.fromkeys(s for s in strings if s))
        where = f"panel file {text}"
    else:
        raise ConfigError(f"panel {shown(text)} is neither a file of architecture strings nor a run folder")
    if not strings:
        raise ConfigError(f"{where} holds no architecture: the panel is empty")
    if len(strings) < PANEL_MIN:
        raise ConfigError(f"{where} holds {len(strings)} architecture(s); no rank correlation is possible with fewer "
                          f"than {PANEL_MIN}")
    if len(strings) > PANEL_LIMIT:
        raise ConfigError(f"{where} holds {len(strings):,} architectures; a panel has at most {PANEL_LIMIT:,}")
    members: list[Solved] = []
    for number, s in enumerate(strings, 1):
        try:
            members.append(fit(Architecture.parse(s), budget, shape))
        except SpaceError as exc:
            raise SpaceError(f"{where}, architecture {number}: {exc}") from None
    hashes = [m.arch.semantic_hash for m in members]
    if len(set(hashes)) < len(hashes):
        raise ConfigError(f"{where} names one architecture twice (after fitting to the budget); name each once")
    return members, {"panel_source": where, "budget": budget, "space_file": None, "space_name": "panel",
                     "space": {}, "strata": []}


def jobs_of(config: RunConfig) -> list[Job]:
    """The audit's evaluations in trial-id order: fidelity by fidelity (the reference first), member by member."""
    from nas.space.architecture import Architecture

    design = config.design or {}
    panel, params = design["panel"], design["panel_params"]
    fidelities = [Fidelity.from_dict(f) for f in design["fidelities"]]
    out = []
    for f_index, fid in enumerate(fidelities):
        for i, (arch, count) in enumerate(zip(panel, params, strict=True)):
            out.append(Job(f_index * len(panel) + i, arch, Architecture.parse(arch).semantic_hash, count, fid,
                           config.seed, {"panel_index": i}))
    return out


def new_audit_config(opts: AuditOptions, shape: Shape) -> tuple[RunConfig, RunStore]:
    """The RunConfig of a new audit and its (not yet created) store; nothing is written here."""
    fidelities = plan_fidelities(opts.reference, opts.fidelities)
    members, source = plan_panel(opts, shape)
    objectives = parse_objectives("accuracy,interference", opts.interference or DEFAULT_INTERFERENCE)
    store = new_store(opts.run, opts.results_dir, "audit")
    design = {
        "panel": [m.arch.to_string() for m in members],
        "panel_params": [m.params for m in members],
        "strata": source.pop("strata"),
        "panel_seed": opts.seed or 0,
        "panel_source": source.pop("panel_source", f"stratified sample of {source['space_name']}"),
        "reference": fidelities[0].name,
        "fidelities": [f.to_dict() for f in fidelities],
    }
    config = RunConfig(
        kind="audit", space_file=source["space_file"], space_name=source["space_name"], space=source["space"],
        budget=source["budget"], objectives=objectives, sampler="panel", fidelity=fidelities[0],
        trials=len(members) * len(fidelities), seed=opts.seed or 0, design=design, **opts.config_fields(store),
    )
    return config, store


def resumed_audit_config(opts: AuditOptions, store: RunStore, shape: Shape) -> RunConfig:
    """The stored audit, with execution settings applied; result-shaping options must match what is stored."""
    shaping = (opts.panel, opts.space_file, opts.budget, opts.n, opts.strata, opts.fidelities, opts.reference,
               opts.seed, opts.interference)
    fresh = None
    if any(v is not None for v in shaping):
        fresh, _ = new_audit_config(dataclasses.replace(opts, run=str(store.root) + ".check", resume=False), shape)
    return resumed(store.read_config(), fresh, ("panel", "fidelities", "reference"), opts)


def run_audit(opts: AuditOptions, console: Any) -> tuple[RunStore, int]:
    """Plan (or resume) the audit, run what is missing, write the report; (store, exit status)."""
    from nas.analysis.audit_report import write_audit_report

    reuse = [RunStore.open(r, opts.results_dir) for r in opts.reuse]
    return run_designed(
        opts, "audit", plan=lambda shape: new_audit_config(opts, shape),
        replan=lambda store, shape: resumed_audit_config(opts, store, shape),
        execute=lambda config, store, data: _run(config, store, data, console, reuse),
        report=write_audit_report, console=console)


def _run(config: RunConfig, store: RunStore, data: Any, console: Any, reuse: list[RunStore]) -> int:
    jobs = jobs_of(config)
    design = config.design or {}
    console.print(f"audit {config.name} → {store.root}\npanel of {len(design['panel'])} ({design['panel_source']}), "
                  f"reference {design['reference']}, {len(design['fidelities']) - 1} cheaper fidelit(ies); "
                  f"{len(jobs)} evaluations, {len(store.records())} recorded")
    return run_jobs(config, store, jobs, data, console=console, reuse_from=reuse)
