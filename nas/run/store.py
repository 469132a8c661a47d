"""RunStore: the only reader and writer of a run folder.

::

    results/<run>/driver.lock               the driver working on the run (host, pid, since), while it runs
    results/<run>/run.yaml                  RunConfig (written first, atomically)
    results/<run>/study.db                  Optuna storage, unless the run names another
    results/<run>/trials.csv                one row per trial (TRIAL_COLUMNS), rebuilt after every record
    results/<run>/trials/<id>/metrics.json  the final TrialRecord of one trial (the source of truth)
    results/<run>/trials/<id>/trial.log     the trial's own log

Every write is atomic (temporary file + rename), so a reader never sees half a file and a kill loses
nothing already recorded. A record that cannot be read is an error naming the file, never skipped.
One driver at a time writes a run: :meth:`RunStore.lock` (see :mod:`nas.lockfile`). A folder that holds
only what an interrupted start leaves (a lock file, temporary files, nothing else) may be started again.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from nas.atomic import atomic_write_json, atomic_write_text, jsonable
from nas.errors import NASError, RunStoreError, shown
from nas.run.config import RunConfig
from nas.run.record import TRIAL_COLUMNS, TrialRecord

if TYPE_CHECKING:
    import pandas as pd

LOCK_NAME = "driver.lock"
MAX_RUN_YAML_BYTES = 4 * 1024 * 1024  # a run.yaml is a few kB; the space it holds is at most 64 kB


class RunStore:
    """One run folder."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()

    @classmethod
    def open(cls, run: str | Path, results_dir: Path | str = "results") -> RunStore:
        """An existing run, given as its folder or as a name under ``results_dir``; RunStoreError otherwise."""
        given = Path(run)
        candidates = [given] if given.is_absolute() or given.parent != Path(".") else [given, Path(results_dir) / given]
        unreadable: OSError | None = None
        for path in candidates:
            try:
                if (path / "run.yaml").is_file():
                    return cls(path)
            except OSError as exc:  # e.g. a folder without permission: say so, not "no run.yaml"
                unreadable = unreadable or exc
        if unreadable is not None:
            raise RunStoreError(f"{shown(str(run))} cannot be used as a run folder: "
                                f"{unreadable.strerror or unreadable}")
        path = candidates[0]
        try:
            if not path.exists():
                where = f" (nor under {results_dir}/)" if len(candidates) > 1 else ""
                raise RunStoreError(f"run folder {shown(str(run))} does not exist{where}; give the folder of a run, "
                                    "e.g. results/<run>")
            if not path.is_dir():
                raise RunStoreError(f"{shown(str(run))} is a file, not a run folder; give the folder that holds "
                                    "run.yaml")
        except OSError as exc:
            raise RunStoreError(f"{shown(str(run))} cannot be used as a run folder: {exc.strerror or exc}") from None
        raise RunStoreError(f"{shown(str(run))} is not a run folder: it has no run.yaml (`nas search`, `nas audit` "
                            "and `nas study` write runs under results/<run>/)")

    @property
    def name(self) -> str:
        return self.root.name

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

    def resume_dir(self, trial_id: int) -> Path:
        """Where a running trial checkpoints its training (one folder per architecture hash below it); removed
        when the trial's final record is written."""
        return self.trial_dir(trial_id) / "resume"

    def exists(self) -> bool:
        return self.run_yaml.is_file()

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_NAME

    def can_start(self) -> bool:
        """True when a new run may be started here: no folder yet, or one holding only what an interrupted
        start leaves behind (a lock file, temporary files of an atomic write)."""
        try:
            if not self.root.exists():
                return True
            if not self.root.is_dir():
                return False
            return all(p.name == LOCK_NAME or (p.name.startswith(".") and p.name.endswith(".tmp"))
                       for p in self.root.iterdir())
        except OSError:
            return False

    def check_can_start(self) -> None:
        """Raise RunStoreError unless a new run may be started here (see :meth:`can_start`)."""
        if not self.can_start():
            raise RunStoreError(f"run folder {self.root} already exists; add --resume to continue it, or pick "
                                "another --run")

    @contextmanager
    def lock(self, command: str = "") -> Iterator[str | None]:
        """Hold the run for this driver (creating its folder); yield a note when a dead driver's lock was taken
        over. A run held by a live driver is a RunStoreError naming it (host, pid, since, command)."""
        from nas.lockfile import hold_lock

        with hold_lock(self.lock_path, f"run {self.root}", command) as note:
            yield note

    # ---- run.yaml ------------------------------------------------------------------------
    def write_config(self, config: RunConfig) -> None:
        import yaml

        atomic_write_text(self.run_yaml, yaml.safe_dump(jsonable(config.to_dict()), sort_keys=False))

    def read_config(self) -> RunConfig:
        """The run.yaml, read with the space files' strict YAML loader (no aliases, bounded depth and size)."""
        from nas.space.schema import load_yaml

        if not self.exists():
            raise RunStoreError(f"{self.root} is not a run folder (it has no run.yaml)")
        try:
            size = self.run_yaml.stat().st_size
            if size > MAX_RUN_YAML_BYTES:
                raise RunStoreError(f"{self.run_yaml} is {size:,} bytes, too large for a run.yaml (at most "
                                    f"{MAX_RUN_YAML_BYTES:,}); is it the right file?")
            data = load_yaml(self.run_yaml.read_text(encoding="utf-8"), str(self.run_yaml), what="a run.yaml")
        except (OSError, UnicodeDecodeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RunStoreError(f"{self.run_yaml} cannot be read: {first[:200]}") from None
        except NASError as exc:  # the strict loader's message names the file first
            why = str(exc).removeprefix(f"{self.run_yaml}: ")
            raise RunStoreError(f"{self.run_yaml} cannot be read: {why}") from None
        return RunConfig.from_dict(data, where=str(self.run_yaml))

    # ---- trial records ---------------------------------------------------------------------
    def write_record(self, record: TrialRecord) -> None:
        """Store one trial's final record, then rebuild trials.csv from every record."""
        self.write_records([record])

    def write_records(self, records: list[TrialRecord]) -> None:
        """Store several final records, then rebuild trials.csv once; a recorded trial's checkpoints go."""
        import shutil

        for record in records:
            atomic_write_json(self.trial_dir(record.trial_id) / "metrics.json", record.to_dict())
            shutil.rmtree(self.resume_dir(record.trial_id), ignore_errors=True)
        self.rewrite_csv()

    def record_paths(self) -> list[Path]:
        """Every trials/<id>/metrics.json; a trials/ (or a trial folder) that cannot be read is a RunStoreError."""
        folder = self.root / "trials"
        try:
            if not folder.exists():
                return []
            if not folder.is_dir():
                raise RunStoreError(f"{folder} is a file, not the folder of trial records; restore it or move it "
                                    "away")
            paths = sorted(p for p in (d / "metrics.json" for d in folder.iterdir() if d.is_dir()) if p.exists())
            for path in paths:
                if not path.is_file():  # a folder, a pipe or a device would fail or block the reader
                    raise RunStoreError(f"trial record {path} is not a file; restore it or move that trial's folder "
                                        "away")
            return paths
        except OSError as exc:
            raise RunStoreError(f"{exc.filename or folder} cannot be read ({exc.strerror or exc}); the trial records "
                                "of the run are under it") from None

    def records(self) -> list[TrialRecord]:
        """Every final trial record, ordered by trial id; an unreadable record is a RunStoreError naming it."""
        out = []
        for path in self.record_paths():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                why = exc.strerror if isinstance(exc, OSError) else str(exc).splitlines()[0][:120]
                raise RunStoreError(f"trial record {path} cannot be read ({why}); restore it or move that trial's "
                                    "folder away") from None
            try:
                record = TrialRecord.from_dict(data, where=f"trial record {path}")
            except NASError as exc:
                raise RunStoreError(str(exc)) from None
            if path.parent.name != f"{record.trial_id:05d}":
                raise RunStoreError(f"trial record {path} says trial_id {record.trial_id}, but its folder is "
                                    f"{path.parent.name}; the run folder was edited by hand")
            out.append(record)
        return sorted(out, key=lambda r: r.trial_id)

    def rewrite_csv(self, records: list[TrialRecord] | None = None) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(TRIAL_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for record in self.records() if records is None else records:
            writer.writerow(record.row())
        atomic_write_text(self.trials_csv, buf.getvalue())

    def table(self, records: list[TrialRecord] | None = None) -> pd.DataFrame:
        """Every record as one row: the TRIAL_COLUMNS first (numbers as floats), then every extra measurement."""
        import pandas as pd

        rows = [r.to_dict() for r in (self.records() if records is None else records)]
        frame = pd.DataFrame(rows)
        for column in TRIAL_COLUMNS:
            if column not in frame.columns:
                frame[column] = None
        extras = [c for c in frame.columns if c not in TRIAL_COLUMNS]
        frame = frame[[*TRIAL_COLUMNS, *extras]]
        for column in ("reason", "arch", "arch_hash", "fidelity", "status"):
            frame[column] = frame[column].fillna("").astype(str)
        for column in TRIAL_COLUMNS:
            if column not in ("trial_id", "status", "reason", "reused", "arch", "arch_hash", "fidelity"):
                frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        if len(frame):
            frame["trial_id"] = frame["trial_id"].astype("int64")
            frame["reused"] = frame["reused"].astype(bool)
        return frame.sort_values("trial_id", kind="stable").reset_index(drop=True)
