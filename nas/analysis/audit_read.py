"""Reading an audit run for ``nas.analysis.audit``: its design, one record per (member, fidelity), and costs."""

from __future__ import annotations

from typing import Any

import numpy as np

from nas.errors import NASError, RunStoreError, shown
from nas.fidelity import Fidelity
from nas.objectives import ZERO_COST_NAMES
from nas.run import RunStore, TrialRecord
from nas.space.architecture import parse_architecture


def audit_design(store: RunStore) -> tuple[Any, list[str], str, list[Fidelity]]:
    """(config, panel, reference name, fidelities) of an audit run; RunStoreError names what is wrong."""
    config = store.read_config()
    where = str(store.run_yaml)
    if config.kind != "audit":
        raise RunStoreError(f"{store.root} is a {config.kind} run, not an audit (`nas analyze` reads searches)")
    design = config.design
    if not isinstance(design, dict):
        raise RunStoreError(f"{where}: an audit run needs a design mapping (panel, reference, fidelities)")
    for key, kind in (("panel", list), ("reference", str), ("fidelities", list)):
        if not isinstance(design.get(key), kind):
            raise RunStoreError(f"{where}: design.{key} should be a {kind.__name__}, got {shown(design.get(key))}")
    panel = design["panel"]
    if not all(isinstance(a, str) for a in panel):
        raise RunStoreError(f"{where}: design.panel should list architecture strings")
    fidelities = []
    for i, f in enumerate(design["fidelities"]):
        if not isinstance(f, dict):
            raise RunStoreError(f"{where}: design.fidelities[{i}] should be a mapping of training settings, "
                                f"got {shown(f)}")
        try:
            fidelities.append(Fidelity.from_dict(f))
        except NASError as exc:
            raise RunStoreError(f"{where}: design.fidelities[{i}]: {exc}") from None
    names = [f.name for f in fidelities]
    if design["reference"] not in names:
        raise RunStoreError(f"{where}: the reference fidelity {shown(design['reference'])} is not among the "
                            f"audit's fidelities ({', '.join(names) or 'none'})")
    return config, panel, design["reference"], fidelities


def member_records(records: list[TrialRecord], panel: list[str]) -> dict[tuple[int, str], TrialRecord]:
    """(panel index, fidelity) -> the record that stands for it (complete first, then original, then first).

    A record names its member by its ``panel_index`` extra, else by its architecture string or hash.
    """
    index_of: dict[str, int] = {}
    for i, arch in enumerate(panel):
        index_of.setdefault(arch, i)
        try:
            index_of.setdefault(parse_architecture(arch).semantic_hash, i)
        except NASError:
            continue
    out: dict[tuple[int, str], TrialRecord] = {}
    for r in sorted(records, key=lambda r: (not r.complete, r.reused, r.trial_id)):
        i = r.extra.get("panel_index", index_of.get(r.arch, index_of.get(r.arch_hash)))
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(panel):
            raise RunStoreError(f"trial {r.trial_id} of the audit has no valid panel_index ({shown(i)}) and its "
                                "architecture is not in design.panel")
        out.setdefault((i, r.fidelity), r)
    return out


def fidelity_value(chosen: dict[tuple[int, str], TrialRecord], i: int, fid: str, column: str
                    ) -> tuple[float | None, str]:
    r = chosen.get((i, fid))
    if r is None:
        return None, f"no result at {fid}"
    v = r.measured(column)  # a network that diverged after training keeps its (chance) accuracy
    if v is not None:
        return v, ""
    if not r.complete:
        return None, f"{fid} {r.status}" + (f": {r.reason}" if r.reason else "")
    return None, f"{column} at {fid} is not a finite number"


def member_value(chosen: dict[tuple[int, str], TrialRecord], i: int, column: str) -> tuple[float | None, str]:
    """An architecture-level value (zero-cost score, params, MACs): the first record of the member that has it."""
    rs = [r for (j, _), r in chosen.items() if j == i]
    if not rs:
        return None, "no record"
    for r in rs:
        if r.finite(column) is not None:
            return r.finite(column), ""
    recorded = any(r.value(column) is not None for r in rs) or scored_not_finite(chosen, i, column)
    return None, f"{column} is not a finite number" if recorded else f"{column} not recorded"


def scored_not_finite(chosen: dict[tuple[int, str], TrialRecord], i: int, column: str) -> bool:
    """Whether member ``i``'s zero-cost score was computed (its ``<column>_s`` timing is recorded) yet no record
    holds a finite value: it overflowed or was undefined (stored as null, as NaN is in JSON)."""
    rs = [r for (j, _), r in chosen.items() if j == i]
    return any(r.finite(f"{column}_s") is not None for r in rs) and all(r.finite(column) is None for r in rs)


def costs(records: list[TrialRecord], fidelities: list[Fidelity], threads: int) -> dict[str, float | None]:
    """CPU-seconds per evaluation of every fidelity and zero-cost proxy (None where nothing was timed).

    Seconds count × the threads the record ran with (``threads``, the run's setting, for records that predate it).
    """
    def cpu_s(r: TrialRecord, column: str) -> float | None:
        seconds = r.finite(column)
        return None if seconds is None else seconds * (r.finite("threads") or threads)

    out: dict[str, float | None] = {}
    for f in fidelities:
        timed = [r for r in records if r.fidelity == f.name and r.finite("wall_s") is not None]
        own = [r for r in timed if not r.reused] or [r for r in timed if r.finite("wall_s")]  # reused: if timed
        pool = [r for r in own if r.complete] or own
        out[f.name] = float(np.median([cpu_s(r, "wall_s") for r in pool])) if pool else None
    for name in ZERO_COST_NAMES:  # every evaluation scored its network afresh: each one is a timing
        timed = [t for r in records if not r.reused and (t := cpu_s(r, f"zc_{name}_s")) is not None]
        out[f"zc_{name}"] = float(np.median(timed)) if timed else None
    return out
