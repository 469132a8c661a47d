"""`nas compare`: which group of networks wins when every one is retrained by one recipe?

Groups, freely combined: ``winner`` (the top K of each search run's Pareto front, spread along it as
`nas retrain --top` picks), ``random`` (K architectures drawn, seeded, from the runs' space at their budget,
never a front member), ``baseline`` (every fixed network of ``search_spaces/baselines/``, adapted to small
inputs and scaled to the budget by one width multiplier) and ``arch`` (strings or files given with --arch).
Every member is trained at the main fidelity with R seeds and measured once on the test split
(:func:`nas.search.trainable.final_measurements`); with a long fidelity, the best member of each group by
mean validation accuracy is then trained once more at it. Trial ``s·n + i`` is member ``i`` at seed ``s``
(seed-major, groups interleaved, so a partial run already compares every group); the long trials follow.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.compare.members import GROUPS, Member, members_of, planned_trials, seeds_of
from nas.errors import BudgetError, ConfigError, NASError, RunStoreError, shown
from nas.fidelity import Fidelity, parse_fidelity
from nas.objectives import parse_objectives
from nas.run import RunConfig, RunStore, TrialRecord
from nas.sampling import Shape
from nas.search.batch import DesignedOptions, Job, new_store, resumed, run_designed, run_jobs

DEFAULT_FIDELITY = "standard:epochs=2,train_images=null"  # the audit's reference: 54k images x 2, augmented
DEFAULT_LONG = "full:epochs=10"  # the `full` recipe (SGD, lr 0.1, cosine) over all images for 10 epochs
DEFAULT_TOP = 2
DEFAULT_SEEDS = 2
SEEDS_LIMIT = 20
RANDOM_LIMIT = 1000


@dataclass
class CompareOptions(DesignedOptions):
    """Command-line values of `nas compare` (None: the default, or the run's own on --resume)."""

    runs: list[str] = field(default_factory=list)
    top: int | None = None
    random: int | None = None
    baselines: list[str] | None = None  # names; [] means every baseline
    archs: list[str] = field(default_factory=list)
    seeds: int | None = None
    fidelity: str | None = None
    long: str | None = None


# ---- sources ----------------------------------------------------------------------------------------------------


def open_runs(paths: list[str], results_dir: Path) -> list[tuple[RunStore, RunConfig]]:
    """The search runs to take winners from: each a `nas search` run; all of one budget and data set."""
    out: list[tuple[RunStore, RunConfig]] = []
    for text in dict.fromkeys(paths):
        store = RunStore.open(text, results_dir)
        config = store.read_config()
        if config.kind != "search":
            raise RunStoreError(f"{store.root} is a `nas {config.kind}` run; --runs takes search runs")
        out.append((store, config))
    for what, key in (("budget", lambda c: c.budget), ("data set", lambda c: (c.dataset, c.resolution))):
        values = {str(key(c)) for _, c in out}
        if len(values) > 1:
            listing = "; ".join(f"{s.root}: {key(c)}" for s, c in out)
            raise ConfigError(f"the runs differ in {what} ({listing}); a comparison needs one {what}")
    return out


def winners(runs: list[tuple[RunStore, RunConfig]], top: int) -> tuple[list[Member], list[str]]:
    """The top ``top`` of each run's front, spread along it; notes for fronts smaller than ``top``."""
    from nas.retrain.select import top_of_front

    members, notes = [], []
    for store, config in runs:
        picked = top_of_front(store.records(), config, top, store.root)
        if len(picked) < top:
            notes.append(f"{store.root}: its front has {len(picked)} member(s), fewer than --top {top}; all used")
        for c in picked:
            r = c.record
            assert r is not None
            proxy = {"fidelity": r.fidelity, "accuracy": r.accuracy,
                     **{o.name: r.value(o.name) for o in config.objectives if o.name != "accuracy"}}
            members.append(Member("winner", f"{config.name} trial {r.trial_id}", c.arch.to_string(), c.params,
                                  {"run": str(store.root), "trial": r.trial_id, "search": proxy}))
    return members, notes


def random_members(space: Any, k: int, *, seed: int, budget: Any, shape: Shape, avoid: set[str]) -> list[Member]:
    """``k`` architectures drawn from ``space`` (seeded, budget-solved), none of whose hash is in ``avoid``."""
    from nas.sampling import sample_solved

    drawn = sample_solved(space, min(k + len(avoid), space.size()), seed=seed, budget=budget, shape=shape)
    picked = [s for s in drawn.solved if s.arch.semantic_hash not in avoid][:k]
    if len(picked) < k:
        raise BudgetError(f"only {len(picked)} architectures of {shown(space.name)} other than the search winners "
                          f"could be drawn within the budget; lower --random")
    return [Member("random", f"random {i}", s.arch.to_string(), s.params, {"space": space.name, "draw_seed": seed})
            for i, s in enumerate(picked)]


def baseline_members(names: list[str], budget: Any, shape: Shape,
                     downsamplings: int) -> tuple[list[Member], list[dict[str, str]]]:
    """The baselines named (all when ``names`` is empty), adapted to ``shape`` and scaled to ``budget``; and the
    ones that cannot be, with why.

    Adaptation (written into each member's source): on inputs of 64 px or less the stem keeps no downsampling
    and the earliest stride-2 stages run at stride 1 until the network halves its input ``downsamplings`` times,
    as the space's networks do (the small-input versions of these networks do the same); then one width
    multiplier, the budget solver's, scales every width to the budget.
    """
    from nas.retrain.select import BASELINES_DIR, check_baseline_names
    from nas.sampling import fit
    from nas.space import load_target

    members, infeasible = [], []
    for name in check_baseline_names(names):
        original = load_target(str(BASELINES_DIR / f"{name}.yaml")).single()
        adapted = original.adapted_to_input(shape.resolution).with_downsamplings(downsamplings)
        changes = _adaptation(original, adapted)
        try:
            solved = fit(adapted, budget, shape)
        except BudgetError as exc:
            infeasible.append({"name": name, "reason": str(exc)})
            continue
        scale = solved.arch.stages[-1].width / max(1, adapted.stages[-1].width)
        members.append(Member("baseline", name, solved.arch.to_string(), solved.params,
                              {"baseline": name, "adapted": changes, "width_multiplier": round(scale, 4),
                               "downsamplings": adapted.downsamplings}))
    return members, infeasible


def _adaptation(original: Any, adapted: Any) -> str:
    """How a baseline was changed for a small input, in words."""
    parts = []
    if (original.stem.stride, original.stem.pool) != (adapted.stem.stride, adapted.stem.pool):
        parts.append(f"stem stride {original.stem.stride}{' + max-pool' if original.stem.pool else ''} → 1")
    for i, (a, b) in enumerate(zip(original.stages, adapted.stages, strict=True)):
        if a.stride != b.stride:
            parts.append(f"stage {i + 1} stride {a.stride} → {b.stride}")
    return "; ".join(parts) or "none"


def arch_members(texts: list[str], budget: Any, shape: Shape) -> list[Member]:
    """--arch strings or files: taken as written without a budget, scaled to it with one."""
    from nas.sampling import fit
    from nas.space import load_target

    out = []
    for i, text in enumerate(dict.fromkeys(texts)):
        try:
            arch = load_target(text).single()
        except NASError as exc:
            raise type(exc)(f"--arch {shown(text, 60)}: {exc}") from None
        solved = fit(arch, budget, shape)
        out.append(Member("arch", f"arch {i}", solved.arch.to_string(), solved.params, {"given": text}))
    return out


def interleave(groups: list[list[Member]]) -> list[Member]:
    """Members taken one from each group in turn (so the first trials of a run already span every group)."""
    out: list[Member] = []
    for i in range(max((len(g) for g in groups), default=0)):
        out.extend(g[i] for g in groups if i < len(g))
    return out


# ---- the plan ----------------------------------------------------------------------------------------------------


def check_options(opts: CompareOptions) -> tuple[list[tuple[RunStore, RunConfig]], Fidelity, Fidelity | None]:
    """Every check that needs no data, made before any is loaded: the sources, the numbers and the recipes."""
    from nas.space import parse_budget

    if not (opts.runs or opts.random is not None or opts.baselines is not None or opts.archs):
        raise ConfigError("nothing to compare: give --runs RUN ..., --random K, --baselines and/or --arch ARCH")
    if opts.top is not None and (isinstance(opts.top, bool) or not isinstance(opts.top, int) or opts.top < 1):
        raise ConfigError(f"--top must be at least 1, got {shown(opts.top)}")
    if opts.random is not None and (isinstance(opts.random, bool) or not 1 <= opts.random <= RANDOM_LIMIT):
        raise ConfigError(f"--random must be from 1 to {RANDOM_LIMIT:,}, got {shown(opts.random)}")
    seeds = DEFAULT_SEEDS if opts.seeds is None else opts.seeds
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= SEEDS_LIMIT:
        raise ConfigError(f"--seeds must be from 1 to {SEEDS_LIMIT}, got {shown(seeds)}")
    fidelity = parse_fidelity(opts.fidelity or DEFAULT_FIDELITY)
    long_spec = opts.long or DEFAULT_LONG
    long = None if long_spec.strip().lower() == "none" else parse_fidelity(long_spec)
    if long is not None and long.name == fidelity.name:
        raise ConfigError(f"--long {shown(long.name)} is the main fidelity; name a longer recipe, or none")
    runs = open_runs(opts.runs, opts.results_dir)
    if runs:
        first = runs[0][1]
        if opts.budget is not None and first.budget is not None and parse_budget(opts.budget) != first.budget.params:
            raise ConfigError(f"--budget {shown(opts.budget)} differs from the runs' budget of "
                              f"{first.budget.params:,}; leave it out")
        if opts.dataset is not None and opts.dataset != first.dataset:
            raise ConfigError(f"--dataset {shown(opts.dataset)} differs from the runs' data set "
                              f"{shown(first.dataset)}; leave it out")
    elif opts.budget is None and (opts.random is not None or opts.baselines is not None):
        raise ConfigError("--random and --baselines scale networks to a budget: give --budget or --runs")
    if opts.baselines:
        from nas.retrain.select import check_baseline_names

        check_baseline_names(opts.baselines)
    return runs, fidelity, long


def plan_members(opts: CompareOptions, shape: Shape,
                 runs: list[tuple[RunStore, RunConfig]]) -> tuple[list[Member], dict[str, Any]]:
    """Every member of the comparison and what run.yaml records about how they were chosen."""
    from nas.space import Space, parse_space

    top = DEFAULT_TOP if opts.top is None else opts.top
    budget = runs[0][1].budget if runs else opts.given_budget()
    space, space_file = None, None
    if opts.space_file is not None or (opts.random is not None and not runs):
        from nas.search.settings import default_space
        from nas.space import load_target

        space_file = opts.space_file or default_space()
        target = load_target(space_file)
        if target.space is None:
            raise ConfigError(f"--space must be a space file, got {shown(space_file)}")
        space = target.space
    elif runs:
        spaces = {c.space_name for _, c in runs}
        if opts.random is not None and len(spaces) > 1:
            raise ConfigError(f"the runs search different spaces ({', '.join(sorted(spaces))}); say which one "
                              f"--random draws from with --space FILE")
        space = Space(parse_space(runs[0][1].space, runs[0][1].space_file or "run.yaml"))
        space_file = runs[0][1].space_file
    found, notes = winners(runs, top) if runs else ([], [])
    drawn = []
    if opts.random is not None:
        assert space is not None
        drawn = random_members(space, opts.random, seed=opts.seed or 0, budget=budget, shape=shape,
                               avoid={_hash(m.arch) for m in found})
    downsamplings = _space_downsamplings(space, shape) if space is not None else 3
    base, infeasible = ([], []) if opts.baselines is None else baseline_members(opts.baselines, budget, shape,
                                                                                 downsamplings)
    given = arch_members(opts.archs, budget, shape)
    members = _unique(interleave([found, drawn, base, given]))
    if not members:
        names = ", ".join(b["name"] for b in infeasible[:3]) + (f" and {len(infeasible) - 3} more"
                                                                 if len(infeasible) > 3 else "")
        raise BudgetError(f"no member of the comparison can be built at this budget: every baseline ({names}) is "
                          f"infeasible; the first because {shown(infeasible[0]['reason'], 160)}")
    design = {"runs": [str(s.root) for s, _ in runs], "top": top if runs else None, "random": opts.random,
              "random_seed": (opts.seed or 0) if opts.random is not None else None, "baselines": opts.baselines,
              "downsamplings": downsamplings, "infeasible_baselines": infeasible, "notes": notes,
              "members": [m.to_dict() for m in members]}
    return members, {"design": design, "budget": budget, "space": space, "space_file": space_file}


def _hash(arch: str) -> str:
    from nas.space.architecture import Architecture

    return Architecture.parse(arch).semantic_hash


def _unique(members: list[Member]) -> list[Member]:
    """One member per architecture: the first group that names it keeps it (a winner before a baseline)."""
    seen: dict[str, Member] = {}
    for m in members:
        seen.setdefault(_hash(m.arch), m)
    return list(seen.values())


def _space_downsamplings(space: Any, shape: Shape) -> int:
    """Halvings of the input that the space's networks make at this input size."""
    import random

    return space.sample(random.Random(0)).adapted_to_input(shape.resolution).downsamplings


def main_jobs(config: RunConfig) -> list[Job]:
    """Every member at every seed at the main fidelity, seed-major."""
    members = members_of(config)
    out = []
    for s_index, seed in enumerate(seeds_of(config)):
        for i, m in enumerate(members):
            out.append(Job(s_index * len(members) + i, m.arch, _hash(m.arch), m.params, config.fidelity, seed,
                           {"group": m.group, "label": m.label, "member": i}))
    return out


def long_jobs(config: RunConfig, records: list[TrialRecord]) -> list[Job]:
    """The best member of each group (mean validation accuracy at the main fidelity) once at the long fidelity."""
    from nas.compare.analysis import best_by_group

    design = config.design or {}
    if not design.get("long"):
        return []
    fidelity = Fidelity.from_dict(design["long"])
    members = members_of(config)
    first = len(members) * len(seeds_of(config))
    best = best_by_group(records, config.fidelity.name)
    out = []
    for g_index, group in enumerate(GROUPS):
        i = best.get(group)
        if i is None:
            continue
        m = members[i]
        out.append(Job(first + g_index, m.arch, _hash(m.arch), m.params, fidelity, seeds_of(config)[0],
                       {"group": m.group, "label": m.label, "member": i, "long": True}))
    return out


def new_compare_config(opts: CompareOptions, shape: Shape) -> tuple[RunConfig, RunStore]:
    """The RunConfig of a new comparison and its (not yet created) store; nothing is written here."""
    runs, fidelity, long = check_options(opts)
    seeds = DEFAULT_SEEDS if opts.seeds is None else opts.seeds
    _, plan = plan_members(opts, shape, runs)
    store = new_store(opts.run, opts.results_dir, "compare")
    base = opts.seed or 0
    design = {**plan["design"], "seeds": [base + s for s in range(seeds)],
              "long": None if long is None else long.to_dict()}
    space = plan["space"]
    config = RunConfig(
        kind="compare", space_file=plan["space_file"], space_name=space.name if space is not None else "compare",
        space=space.spec.raw if space is not None else {}, budget=plan["budget"],
        objectives=parse_objectives("accuracy", opts.interference or "polysemanticity"), sampler="compare",
        fidelity=fidelity, trials=0, seed=base, design=design, **opts.config_fields(store),
    )
    config.trials = planned_trials(config)
    return config, store


def resumed_compare_config(opts: CompareOptions, store: RunStore, shape: Shape) -> RunConfig:
    """The stored comparison with execution settings applied; options that change its plan are refused."""
    shaping = (opts.space_file, opts.budget, opts.top, opts.random, opts.seeds, opts.fidelity, opts.long, opts.seed)
    fresh = None
    if any(v is not None for v in shaping) or opts.runs or opts.archs or opts.baselines is not None:
        fresh, _ = new_compare_config(dataclasses.replace(opts, run=str(store.root) + ".check", resume=False), shape)
    return resumed(store.read_config(), fresh, ("members", "seeds", "long"), opts)


def run_compare(opts: CompareOptions, console: Any) -> tuple[RunStore, int]:
    """Plan (or resume) the comparison, train what is missing, write the report; (store, exit status)."""
    from nas.compare.report import write_compare_report

    if not (opts.resume or opts.report_only):
        check_options(opts)
    return run_designed(
        opts, "compare", plan=lambda shape: new_compare_config(opts, shape),
        replan=lambda store, shape: resumed_compare_config(opts, store, shape),
        execute=lambda config, store, data: _run(config, store, data, console),
        report=write_compare_report, console=console, test_split=True)


def _run(config: RunConfig, store: RunStore, data: Any, console: Any) -> int:
    design = config.design or {}
    members = members_of(config)
    counts = {g: sum(m.group == g for m in members) for g in GROUPS}
    jobs = main_jobs(config)
    console.print(f"compare {config.name} → {store.root}\n"
                  + ", ".join(f"{n} {g}" for g, n in counts.items() if n)
                  + f" × {len(design['seeds'])} seed(s) = {len(jobs)} trials at {config.fidelity.describe()}; "
                  f"{len(store.records())} recorded", soft_wrap=True)
    for note in design.get("notes", []):
        console.print(f"  note: {note}", soft_wrap=True)
    for b in design.get("infeasible_baselines", []):
        console.print(f"  infeasible baseline {b['name']}: {b['reason'][:200]}", soft_wrap=True)
    stopped = run_jobs(config, store, jobs, data, console=console, final=True)
    if stopped:
        return stopped
    extra = long_jobs(config, store.records())
    if extra:
        console.print(f"long recipe: the best of each group at {Fidelity.from_dict(design['long']).describe()}")
        stopped = run_jobs(config, store, jobs + extra, data, console=console, final=True)
    return stopped
