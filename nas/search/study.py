"""`nas study`: a full factorial experiment over named choices of a space, at one budget, with seeds per cell.

Default design: block family × activation × norm on the default space (7 × 7 × 2 = 98 cells), every
other choice held: depth 2 in every stage, kernel 3, and each family's canonical expansion and
depthwise setting (:data:`CANONICAL`, after the network each family is named for). ``--fix
CHOICE=VALUE`` changes a held value; ``--factors`` the crossed choices; ``--repeats`` the seeds per
cell. A cell whose network cannot meet the budget, or that the space does not allow, is listed as
infeasible with the reason. Cells that name one network (convnext reads no norm: it is always
LayerNorm) are kept as cells and share their evaluations. Trial ``cell · repeats + replicate`` is one
(cell, seed); seeds change the initialisation and the data order, never the architecture.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import Any

import yaml

from nas.errors import BudgetError, ConfigError, NASError, shown
from nas.fidelity import Fidelity
from nas.objectives import DEFAULT_INTERFERENCE, parse_objectives
from nas.panel import choice_levels
from nas.run import RunConfig, RunStore
from nas.sampling import Shape, fit
from nas.search.batch import DesignedOptions, Job, new_store, resumed, run_designed, run_jobs
from nas.search.settings import DEFAULT_FIDELITY, default_space
from nas.space import Space, load_target
from nas.space.schema import CHOICE_NAMES

DEFAULT_FACTORS = ("block", "activation", "norm")
DEFAULT_FIXED: dict[str, Any] = {"depth": 2, "kernel": 3}
DEFAULT_REPEATS = 2
MAX_CELLS = 5_000
# Each family's own setting of the choices it reads besides block, activation, kernel and norm.
CANONICAL: dict[str, dict[str, Any]] = {
    "basic": {},  # ResNet-18: reads neither expansion nor depthwise
    "bottleneck": {"expansion": 4, "depthwise": False},  # ResNet-50: 1x1 to C/4, dense 3x3
    "inverted": {"expansion": 6, "depthwise": True},  # MobileNetV2: expansion 6, depthwise 3x3
    "separable": {},  # MobileNetV1: always depthwise, no expansion
    "convnext": {"expansion": 4, "depthwise": True},  # ConvNeXt: depthwise k x k, MLP ratio 4
    "sandglass": {"expansion": 6, "depthwise": True},  # MobileNeXt: reduction 6, depthwise at both ends
    "nodepth": {"expansion": 4},  # our reading of NoDepth: linear 1x1 to C/4, dense k x k (no depthwise)
}


@dataclass
class StudyOptions(DesignedOptions):
    """Command-line values of `nas study` (None: the default, or the run's own on --resume)."""

    factors: str | None = None
    fix: list[str] = field(default_factory=list)
    repeats: int | None = None
    fidelity: Fidelity | None = None


def parse_factors(text: str | None, space: Space) -> dict[str, list[Any]]:
    """Factor name → its levels in the space; unknown names and one-level factors are refused."""
    names = [n.strip() for n in (text if text is not None else ",".join(DEFAULT_FACTORS)).split(",") if n.strip()]
    if not names:
        raise ConfigError("--factors needs at least one choice, e.g. block,activation,norm")
    if len(set(names)) < len(names):
        raise ConfigError(f"--factors names a choice twice: {shown(text)}")
    out: dict[str, list[Any]] = {}
    for name in names:
        if name not in CHOICE_NAMES:
            raise ConfigError(f"factor {shown(name)} is not a choice; choices are {', '.join(CHOICE_NAMES)}")
        levels = list(choice_levels(space, name))
        if len(levels) < 2:
            raise ConfigError(f"factor {shown(name)} has {len(levels)} value(s) in space {shown(space.name)}; a factor "
                              "needs at least two levels")
        out[name] = levels
    return out


def parse_fixed(items: list[str], space: Space, factors: dict[str, list[Any]]) -> dict[str, Any]:
    """``--fix CHOICE=VALUE`` items over the defaults (depth 2, kernel 3); each value must be one the space allows."""
    fixed = dict(DEFAULT_FIXED)
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--fix takes CHOICE=VALUE, got {shown(item)}")
        if key in factors:
            raise ConfigError(f"--fix {shown(key)}: it is a factor of the study; drop it from --factors to hold it")
        if key != "depth" and key not in CHOICE_NAMES:
            raise ConfigError(f"--fix {shown(key)} is not a choice; choices are depth, {', '.join(CHOICE_NAMES)}")
        try:
            value = yaml.safe_load(text)
        except (yaml.YAMLError, ValueError):  # ValueError: an integer of more than 4,300 digits
            value = text
        allowed = sorted({d for slot in space.slots for d in slot.depths}) if key == "depth" \
            else list(choice_levels(space, key))
        if value not in allowed or isinstance(value, bool) != isinstance(allowed[0], bool):
            raise ConfigError(f"--fix {shown(item)}: the space allows {key} = {', '.join(map(str, allowed))}")
        fixed[key] = value
    return fixed


def plan_cells(space: Space, factors: dict[str, list[Any]], fixed: dict[str, Any], budget: Any,
               shape: Shape) -> list[dict[str, Any]]:
    """Every combination of factor levels: its network (fitted to the budget) or why it is infeasible."""
    combos = list(itertools.product(*factors.values()))
    if len(combos) > MAX_CELLS:
        raise ConfigError(f"the design has {len(combos):,} cells; at most {MAX_CELLS:,} (fewer factors or levels)")
    cells = []
    for index, combo in enumerate(combos):
        levels = dict(zip(factors, combo, strict=True))
        cell: dict[str, Any] = {"index": index, "levels": levels, "arch": None, "params": None, "infeasible": None}
        try:
            solved = fit(_cell_architecture(space, levels, fixed), budget, shape)
        except (BudgetError, _NotInSpace) as exc:
            cell["infeasible"] = str(exc)
        except NASError as exc:
            cell["infeasible"] = f"cannot be built: {exc}"
        else:
            cell["arch"], cell["params"] = solved.arch.to_string(), solved.params
        cells.append(cell)
    return cells


class _NotInSpace(Exception):
    """A cell asks for a value the space does not allow at some stage."""


def _cell_architecture(space: Space, levels: dict[str, Any], fixed: dict[str, Any]) -> Any:
    family = levels.get("block")

    def pick(key: str, values: tuple[Any, ...]) -> Any:
        name = key.split(".", 1)[1]
        block = family if family is not None else values[0]
        for source in (levels, fixed, CANONICAL.get(str(block), {})):
            if name in source:
                if source[name] not in values:
                    raise _NotInSpace(f"the space does not allow {name} = {source[name]} at {key.split('.')[0]}")
                return source[name]
        return values[0]

    return space.build(pick)


def jobs_of(config: RunConfig) -> list[Job]:
    """One job per (feasible cell, replicate); trial id = cell index · repeats + replicate."""
    from nas.space.architecture import Architecture

    design = config.design or {}
    repeats = int(design["repeats"])
    out = []
    for cell in design["cells"]:
        if cell["arch"] is None:
            continue
        arch_hash = Architecture.parse(cell["arch"]).semantic_hash
        for r in range(repeats):
            extra = {"cell": cell["index"], "replicate": r, **{f"level_{k}": v for k, v in cell["levels"].items()}}
            out.append(Job(cell["index"] * repeats + r, cell["arch"], arch_hash, cell["params"], config.fidelity,
                           config.seed + r, extra))
    return out


def new_study_config(opts: StudyOptions, shape: Shape) -> tuple[RunConfig, RunStore]:
    """The RunConfig of a new study and its (not yet created) store; nothing is written here."""
    from nas.fidelity import get_fidelity

    repeats = DEFAULT_REPEATS if opts.repeats is None else opts.repeats
    if isinstance(repeats, bool) or not 1 <= repeats <= 100:
        raise ConfigError(f"--repeats must be from 1 to 100, got {shown(repeats)}")
    space_file = opts.space_file or default_space()
    target = load_target(space_file, budget=opts.budget, tolerance=opts.tolerance, divisor=opts.divisor)
    if target.space is None:
        raise ConfigError(f"--space must be a space file, got {shown(space_file)}")
    factors = parse_factors(opts.factors, target.space)
    fixed = parse_fixed(opts.fix, target.space, factors)
    cells = plan_cells(target.space, factors, fixed, target.budget, shape)
    if not any(c["arch"] for c in cells):
        raise BudgetError(f"no cell of the design can be built within the budget; first reason: "
                          f"{shown(cells[0]['infeasible'], 240)}")
    objectives = parse_objectives("accuracy,interference", opts.interference or DEFAULT_INTERFERENCE)
    store = new_store(opts.run, opts.results_dir, "study")
    design = {"factors": factors, "fixed": fixed, "canonical": {f: CANONICAL.get(f, {}) for f in
                                                                 factors.get("block", CANONICAL)},
              "repeats": repeats, "cells": cells}
    feasible = sum(c["arch"] is not None for c in cells)
    config = RunConfig(
        kind="study", space_file=space_file, space_name=target.space.name, space=target.space.spec.raw,
        budget=target.budget, objectives=objectives, sampler="factorial",
        fidelity=opts.fidelity or get_fidelity(DEFAULT_FIDELITY), trials=feasible * repeats, seed=opts.seed or 0,
        design=design, **opts.config_fields(store),
    )
    return config, store


def resumed_study_config(opts: StudyOptions, store: RunStore, shape: Shape) -> RunConfig:
    """The stored study with execution settings applied; options that would change its design are refused."""
    shaping = (opts.space_file, opts.budget, opts.factors, opts.repeats, opts.fidelity, opts.seed, opts.interference)
    fresh = None
    if any(v is not None for v in shaping) or opts.fix:
        fresh, _ = new_study_config(dataclasses.replace(opts, run=str(store.root) + ".check", resume=False), shape)
    return resumed(store.read_config(), fresh, ("factors", "fixed", "repeats", "cells"), opts)


def run_study(opts: StudyOptions, console: Any) -> tuple[RunStore, int]:
    """Plan (or resume) the study, run what is missing, write the report; (store, exit status)."""
    from nas.analysis.study_report import write_study_report

    if opts.repeats is not None and (isinstance(opts.repeats, bool) or not 1 <= opts.repeats <= 100):
        raise ConfigError(f"--repeats must be from 1 to 100, got {shown(opts.repeats)}")
    return run_designed(
        opts, "study", plan=lambda shape: new_study_config(opts, shape),
        replan=lambda store, shape: resumed_study_config(opts, store, shape),
        execute=lambda config, store, data: _run(config, store, data, console),
        report=write_study_report, console=console)


def _run(config: RunConfig, store: RunStore, data: Any, console: Any) -> int:
    design = config.design or {}
    cells = design["cells"]
    infeasible = [c for c in cells if c["arch"] is None]
    jobs = jobs_of(config)
    crossed = " × ".join(f"{k} ({len(v)})" for k, v in design["factors"].items())
    console.print(f"study {config.name} → {store.root}\n{crossed} = {len(cells)} cells ({len(infeasible)} "
                  f"infeasible) × {design['repeats']} seed(s) = {len(jobs)} trials at {config.fidelity.describe()}; "
                  f"{len(store.records())} recorded")
    for cell in infeasible:
        console.print(f"  infeasible: {', '.join(f'{k}={v}' for k, v in cell['levels'].items())}: "
                      f"{cell['infeasible'][:160]}", soft_wrap=True)
    return run_jobs(config, store, jobs, data, console=console)
