"""The run store: results/<run>/ with run.yaml, trials.csv and trials/<id>/metrics.json, written atomically.

``trials/<id>/metrics.json`` holds the final record of one trial and is written only
by the search driver; ``trials.csv`` is rebuilt from those records after every
trial, so a run can always be reconstructed from its folder.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from nas.atomic import atomic_write_json, atomic_write_text, jsonable
from nas.errors import RunStoreError

TRIAL_COLUMNS: tuple[str, ...] = (
    "trial_id", "status", "reason", "reused", "arch", "arch_hash", "params", "macs", "fidelity", "epochs",
    "seed", "accuracy", "polysemanticity", "overlap", "outliers", "dead_fraction", "train_images_per_s", "wall_s",
)
STATUSES = ("complete", "failed", "pruned")


class RunStore:
    """One run folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    @property
    def run_yaml(self) -> Path:
        return self.root / "run.yaml"

    @property
    def trials_csv(self) -> Path:
        return self.root / "trials.csv"

    @property
    def study_db(self) -> Path:
        return self.root / "study.db"

    def trial_dir(self, trial_id: int) -> Path:
        return self.root / "trials" / f"{trial_id:05d}"

    def exists(self) -> bool:
        return self.run_yaml.is_file()

    # ---- run.yaml ------------------------------------------------------------------
    def write_config(self, config: dict[str, Any]) -> None:
        import yaml

        atomic_write_text(self.run_yaml, yaml.safe_dump(jsonable(config), sort_keys=False))

    def read_config(self) -> dict[str, Any]:
        import yaml

        if not self.exists():
            raise RunStoreError(f"{self.root} is not a run folder (it has no run.yaml)")
        try:
            data = yaml.safe_load(self.run_yaml.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise RunStoreError(f"{self.run_yaml} cannot be read: {exc}") from None
        if not isinstance(data, dict):
            raise RunStoreError(f"{self.run_yaml} is not a run configuration")
        return data

    # ---- trial records ---------------------------------------------------------------
    def write_record(self, record: dict[str, Any]) -> None:
        """Store one trial's final record, then rewrite trials.csv from every record."""
        missing = [c for c in TRIAL_COLUMNS if c not in record]
        if missing:
            raise ValueError(f"trial record lacks {missing}")
        atomic_write_json(self.trial_dir(int(record["trial_id"])) / "metrics.json", record)
        self.rewrite_csv()

    def records(self) -> list[dict[str, Any]]:
        """Every final trial record, ordered by trial id."""
        out = []
        for path in sorted((self.root / "trials").glob("*/metrics.json")):
            try:
                record = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue  # a record is written atomically; anything else is not one
            if isinstance(record, dict) and record.get("status") in STATUSES:
                out.append(record)
        return sorted(out, key=lambda r: int(r["trial_id"]))

    def rewrite_csv(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(TRIAL_COLUMNS), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for record in self.records():
            writer.writerow({k: "" if record.get(k) is None else record.get(k) for k in TRIAL_COLUMNS})
        atomic_write_text(self.trials_csv, buf.getvalue())
