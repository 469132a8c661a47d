"""Reading a run folder (run.yaml + trials.csv) into memory, with one clear error per kind of bad input."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import RunStoreError

if TYPE_CHECKING:
    import pandas as pd

# The trials.csv columns of the run-store contract, in order.
TRIAL_COLUMNS: tuple[str, ...] = (
    "trial_id",
    "status",
    "reason",
    "reused",
    "arch",
    "arch_hash",
    "params",
    "macs",
    "fidelity",
    "epochs",
    "seed",
    "accuracy",
    "polysemanticity",
    "overlap",
    "outliers",
    "dead_fraction",
    "train_images_per_s",
    "wall_s",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("trial_id", "status", "arch", "fidelity")
TEXT_COLUMNS: tuple[str, ...] = ("status", "reason", "reused", "arch", "arch_hash", "fidelity")
STATUSES: tuple[str, ...] = ("complete", "failed", "pruned")


@dataclass
class Run:
    """A run folder as read from disk: its resolved config and its trial table."""

    path: Path
    config: dict[str, Any]
    trials: pd.DataFrame  # one row per trial, sorted by trial_id; text columns are str, numbers float

    @property
    def name(self) -> str:
        name = self.config.get("name")
        return str(name) if name else self.path.name

    @property
    def sampler(self) -> str:
        """The sampler's name, whether run.yaml stores it as a string or a mapping."""
        sampler = self.config.get("sampler")
        if isinstance(sampler, Mapping):
            sampler = sampler.get("name") or sampler.get("type") or next(iter(sampler.values()), None)
        return str(sampler) if sampler else "unknown sampler"

    @property
    def label(self) -> str:
        return f"{self.name} ({self.sampler})"

    @property
    def default_fidelity(self) -> str:
        fid = self.config.get("fidelity")
        if isinstance(fid, Mapping):
            fid = fid.get("name")
        return str(fid) if fid else "unknown"

    @property
    def fidelities(self) -> list[str]:
        """Fidelity names in order of first appearance."""
        return list(dict.fromkeys(self.trials["fidelity"]))


def load_run(path: Path | str) -> Run:
    """Read ``path/run.yaml`` and ``path/trials.csv``; raise RunStoreError with what is wrong and what to do."""
    import pandas as pd
    import yaml

    path = Path(path)
    if not path.exists():
        raise RunStoreError(f"run folder {path} does not exist; give the folder of a run, e.g. results/<run>.")
    if not path.is_dir():
        raise RunStoreError(f"{path} is a file, not a run folder; give the folder that holds run.yaml and trials.csv.")
    run_yaml, trials_csv = path / "run.yaml", path / "trials.csv"
    if not run_yaml.is_file() and not trials_csv.is_file():
        raise RunStoreError(
            f"{path} is not a run folder: it has neither run.yaml nor trials.csv. `nas search` writes a run "
            "under results/<run>/; pass that folder."
        )
    if not run_yaml.is_file():
        raise RunStoreError(f"{path} has trials.csv but no run.yaml; the run folder is incomplete or was moved badly.")
    if not trials_csv.is_file():
        raise RunStoreError(f"run {path} has no trials.csv yet: no trial has finished, so there is nothing to analyse.")
    try:
        config = yaml.safe_load(run_yaml.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RunStoreError(f"cannot read {run_yaml}: {exc}".splitlines()[0]) from None
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise RunStoreError(f"{run_yaml} should hold a mapping of run settings, got {type(config).__name__}.")

    try:
        trials = pd.read_csv(trials_csv, dtype={c: str for c in TEXT_COLUMNS}, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise RunStoreError(f"{trials_csv} is empty: the run has no trial to analyse.") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise RunStoreError(f"cannot read {trials_csv}: {exc}".splitlines()[0]) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in trials.columns]
    if missing:
        raise RunStoreError(
            f"{trials_csv} lacks the column(s) {', '.join(missing)}; it is not a bottleneck-nas trial table "
            f"(expected columns: {', '.join(TRIAL_COLUMNS)})."
        )
    trials["trial_id"] = pd.to_numeric(trials["trial_id"], errors="coerce")
    if trials["trial_id"].isna().any():
        raise RunStoreError(f"{trials_csv} has a row whose trial_id is not a number; the file is corrupt.")
    trials["trial_id"] = trials["trial_id"].astype("int64")
    for col in TEXT_COLUMNS:
        if col not in trials.columns:
            trials[col] = ""
        trials[col] = trials[col].fillna("").astype(str).str.strip()
    trials["status"] = trials["status"].str.lower()
    run = Run(path=path, config=config, trials=trials)
    trials.loc[trials["fidelity"] == "", "fidelity"] = run.default_fidelity
    hashes = trials["arch_hash"].where(trials["arch_hash"] != "", trials["arch"])
    trials["arch_hash"] = hashes
    for col in trials.columns:
        if col in TEXT_COLUMNS or col == "trial_id":
            continue
        numbers = pd.to_numeric(trials[col], errors="coerce").astype("float64")
        text = trials[col].astype(str).str.strip().str.lower()
        unreadable = numbers.isna() & trials[col].notna() & ~text.isin(["", "nan", "inf", "-inf", "none"])
        if col in TRIAL_COLUMNS or not unreadable.any():
            trials[col] = numbers  # contract columns are numbers; a stray word there reads as missing
        else:
            trials[col] = trials[col].fillna("").astype(str)  # an extra text column: kept, never a metric
    run.trials = trials.sort_values("trial_id", kind="stable").reset_index(drop=True)
    return run
