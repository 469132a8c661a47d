"""Scale-out and faults at the edges: locks, kills between start-up writes, resumed proposals, SIGTERM, full disks,
Ray addresses (a stale cluster file, a non-Ray port, a real `ray start` cluster) and a real PostgreSQL server.

The PostgreSQL and Ray-cluster tests start their own servers on temporary directories and free loopback ports,
and stop them by their own process ids; they are marked slow.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from nas.cli import main
from nas.errors import RunStoreError
from nas.lockfile import Owner, read_owner
from nas.run import RunStore
from nas.storage import connect_url, mask_text, mask_url, same_storage
from nas.testing import make_run

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "train_images=192", "--set", "epochs=1", "--set", "val_images=100", "--set", "probe_images=100",
        "--set", "batch_size=32"]
SYNTH = ["--dataset", "synthetic", "--budget", "20k", *TINY, "--workers", "1", "--cpus-per-trial", "1"]
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # in-process runs: nas.ray_session sets it by default


def _rows(run: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run / "trials.csv").read_text().splitlines()))


def _study(run: Path, url: str | None = None):
    import optuna

    config = yaml.safe_load((run / "run.yaml").read_text())
    return optuna.load_study(study_name=config["name"], storage=url or f"sqlite:///{run / 'study.db'}")


def _training(run: Path) -> bool:
    """A trial of the study is training (RUNNING with its network chosen, not a proposal being pre-screened)."""
    return any(t.state.name == "RUNNING" and "arch_hash" in t.user_attrs for t in _study(run).trials)


def _states(run: Path, url: str | None = None) -> list[str]:
    return [t.state.name for t in _study(run, url).trials]


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Driver:
    """`nas` as its own process, in its own session (so that it and what Ray starts are killed together); its
    output goes to files, so that a long run never blocks on a full pipe."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self._out, self._err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "nas.cli", *args], cwd=ROOT, env=env or ENV,
                                     stdout=self._out, stderr=self._err, text=True, start_new_session=True)
        self.pid = self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float = 600) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the driver and everything in its session (Ray's processes too)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)

    def output(self) -> tuple[str, str]:
        texts = []
        for fh in (self._out, self._err):
            fh.flush()
            fh.seek(0)
            texts.append(fh.read())
        return texts[0], texts[1]


def _wait_for(predicate, driver: Driver | None, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if driver is not None and driver.returncode is not None:
            out, err = driver.output()
            pytest.fail(f"the driver ended before {what}: {out[-2000:]}\n{err[-2000:]}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _one_error(stderr: str) -> bool:
    """One `error:` line and no traceback."""
    return sum(line.startswith("error:") for line in stderr.splitlines()) == 1 and "Traceback" not in stderr


def _records(run: Path) -> int:
    return len(list((run / "trials").glob("*/metrics.json"))) if (run / "trials").exists() else 0


# ---- passwords ---------------------------------------------------------------------------------------------
def test_passwords_are_masked_in_urls_and_text() -> None:
    url = "postgresql://nas:s3cr%40t@db.example:5432/runs"
    assert mask_url(url) == "postgresql://nas:***@db.example:5432/runs"
    assert mask_url("postgresql://nas@db/runs") == "postgresql://nas@db/runs"
    assert mask_url("postgresql://db:5432/runs?password=hunter2&sslmode=require") == \
        "postgresql://db:5432/runs?password=***&sslmode=require"
    assert mask_url(None) is None
    line = f"nas search --storage {url} --run x"
    assert "s3cr" not in mask_text(line) and "nas:***@db.example" in mask_text(line)
    assert mask_text("failed for hunter2", ("hunter2",)) == "failed for ***"
    # a stored (masked) URL connects without a password, so libpq reads PGPASSWORD or ~/.pgpass
    assert connect_url("postgresql://nas:***@db:5432/runs") == "postgresql://nas@db:5432/runs"
    assert connect_url(url) == url
    assert same_storage(url, mask_url(url)) and not same_storage("postgresql://nas:x@other/runs", mask_url(url))


# ---- the lock on a run -------------------------------------------------------------------------------------
def test_a_second_driver_is_refused_naming_the_owner_and_a_stale_lock_is_taken_over(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    store.root.mkdir()
    with store.lock("nas search --run run") as note:
        assert note is None
        owner = read_owner(store.lock_path)
        assert owner is not None and owner.pid == os.getpid() and owner.host == socket.gethostname()
        with pytest.raises(RunStoreError) as refused, store.lock():
            pass
        message = str(refused.value)
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in message and "since" in message
        assert "nas search --run run" in message
    assert not store.lock_path.exists()  # released and removed
    # a dead driver's lock (same host, no such process) is taken over with a note
    dead = Owner(socket.gethostname(), _dead_pid(), "2026-01-01T00:00:00", "nas search (killed)")
    store.lock_path.write_text(json.dumps(dead.__dict__))
    with store.lock() as note:
        assert note is not None and f"pid {dead.pid}" in note and "no longer running" in note
        assert read_owner(store.lock_path).pid == os.getpid()
    # a lock written on another host cannot be checked from here: refused, with the file to delete
    other = Owner("another-host", 1, "2026-01-01T00:00:00")
    store.lock_path.write_text(json.dumps(other.__dict__))
    with pytest.raises(RunStoreError, match=f"another-host.*delete {store.lock_path}"), store.lock():
        pass
    assert read_owner(store.lock_path) == other  # left as it was


def test_resume_refused_while_locked_and_resumed_after_a_dead_driver(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the command line, on a run whose trials are all done (so no Ray is needed)."""
    store = make_run(tmp_path / "done", 3)
    with store.lock("nas search --run done (first driver)"):
        assert main(["search", "--resume", "--run", str(store.root)]) == 2
    err = capsys.readouterr().err
    assert _one_error(err)
    assert f"is in use by another driver: pid {os.getpid()} on host {socket.gethostname()}" in err
    assert "(first driver)" in err
    dead = Owner(socket.gethostname(), _dead_pid(), "2026-01-01T00:00:00")
    store.lock_path.write_text(json.dumps(dead.__dict__))
    assert main(["search", "--resume", "--run", str(store.root)]) == 0
    out = capsys.readouterr().out
    assert f"took over the lock of run {store.root} left by pid {dead.pid}" in out
    assert not store.lock_path.exists()
    # two new runs with one --run: the second finds the first's lock (taken before run.yaml is written)
    starting = RunStore(tmp_path / "new")
    starting.root.mkdir()
    with starting.lock("nas search --run new (first driver)"):
        assert main(["search", "--results-dir", str(tmp_path), "--run", "new", *SYNTH]) == 2
        err = capsys.readouterr().err
        assert _one_error(err) and f"is in use by another driver: pid {os.getpid()}" in err
        assert read_owner(starting.lock_path).pid == os.getpid()  # the first driver's folder is left alone
    # the one rule of --resume: equal settings accepted, conflicting ones refused (the budget too)
    assert main(["search", "--resume", "--run", str(store.root), "--budget", "300k"]) == 2
    assert "--budget '300.0k' (the run has '1.50M')" in capsys.readouterr().err


def test_a_resume_on_a_full_disk_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import nas.run.store

    store = make_run(tmp_path / "full", 3)
    before = {p: p.read_bytes() for p in store.root.rglob("*") if p.is_file()}

    def no_space(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(nas.run.store, "atomic_write_text", no_space)
    assert main(["search", "--resume", "--run", str(store.root)]) == 2
    err = capsys.readouterr().err
    assert _one_error(err)
    assert f"disk full at {store.run_yaml}" in err and f"nas search --resume --run {store.root}" in err
    after = {p: p.read_bytes() for p in store.root.rglob("*") if p.is_file() and p.name != "study.db"}
    assert after == before  # nothing changed, nothing left behind (the lock is gone too)


# ---- a kill between start-up writes ------------------------------------------------------------------------
_KILLER = """
import os, sys
point, args = sys.argv[1], sys.argv[2:]
import optuna, optuna.study, nas.lockfile, nas.run.store, nas.storage

def after(owner, name, nth=1):
    original, calls = getattr(owner, name), []
    def killed(*a, **k):
        out = original(*a, **k)
        calls.append(1)
        if len(calls) == nth:
            os._exit(137)
        return out
    setattr(owner, name, killed)

def before(owner, name):
    setattr(owner, name, lambda *a, **k: os._exit(137))

{"folder": lambda: before(nas.lockfile, "_acquire"),
 "lock": lambda: after(nas.lockfile, "_write_owner"),
 "run.yaml": lambda: after(nas.run.store.RunStore, "write_config"),
 "study lock": lambda: after(nas.lockfile, "_write_owner", nth=2),  # the run's lock, then the study's
 "tables": lambda: after(nas.storage, "open_storage"),
 "study": lambda: after(optuna, "create_study"),
 "names": lambda: after(optuna.study.Study, "set_metric_names"),
}[point]()
from nas.cli import main
sys.exit(main(args))
"""
STARTUP_WRITES = ["folder", "lock", "run.yaml", "study lock", "tables", "study", "names"]


@pytest.mark.parametrize("storage", ["run folder", pytest.param("shared sqlite", marks=pytest.mark.slow)])
def test_a_kill_between_start_up_writes_leaves_a_run_that_resumes_or_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], storage: str
) -> None:
    """Kill the driver (os._exit, as SIGKILL: no clean-up runs) after each start-up write in turn."""
    import nas.search.runner

    ran: list[str] = []
    monkeypatch.setattr(nas.search.runner, "_drive", lambda *a, **k: ran.append("drive"))  # no Ray: start-up only
    for point in STARTUP_WRITES:
        if point == "study lock" and storage == "run folder":
            continue  # a run's own study.db is covered by the run's lock
        name = point.replace(" ", "-").replace(".", "-")
        extra = ["--storage", f"sqlite:///{tmp_path / 'shared.db'}"] if storage != "run folder" else []
        command = ["search", "--results-dir", str(tmp_path), "--run", name, "--trials", "1", *SYNTH, *extra]
        killed = subprocess.run([sys.executable, "-c", _KILLER, point, *command], cwd=ROOT, env=ENV,
                                capture_output=True, text=True, timeout=300)
        assert killed.returncode == 137, (point, killed.stderr[-2000:])
        run = tmp_path / name
        assert run.is_dir(), point
        ran.clear()
        if (run / "run.yaml").exists():
            assert main([*command, "--resume"]) == 0, (point, capsys.readouterr())
            assert main(command) == 2  # it is a run now: a new start is refused, --resume named
            assert "add --resume" in capsys.readouterr().err
        else:
            assert main(command) == 0, (point, capsys.readouterr())  # nothing to resume: the same command restarts
        assert ran == ["drive"], point
        assert yaml.safe_load((run / "run.yaml").read_text())["name"] == name
        study = _study(run, extra[1] if extra else None)
        assert study.metric_names == ["accuracy", "polysemanticity"], point
        assert not (run / "driver.lock").exists()
        assert not list(tmp_path.glob("shared.db.*.lock"))
        capsys.readouterr()


# ---- resumed proposals -------------------------------------------------------------------------------------
def _simulate(root: Path, seed: int, trials: int, kill_after: int | None,
              proposals: list[dict] | None = None) -> list[str]:
    """A search driven through the real start-up, searcher and resume path, with metrics made up from the
    architecture's hash instead of training; ``kill_after`` trials in, one more is in flight when the
    driver dies and the run is resumed. Returns the architecture hash of every record."""
    import nas.search.runner as runner
    from nas.sampling import Shape
    from nas.search.progress import SearchState
    from nas.search.samplers import default_population
    from nas.search.searcher import StudySearcher
    from nas.space import Space, parse_space
    from nas.testing import make_config

    config = make_config("sim", sampler="nsga2", trials=trials, seed=seed, population=default_population(trials),
                         budget=None)
    store = RunStore(root)
    store.root.mkdir(parents=True)
    store.write_config(config)
    space = Space(parse_space(config.space, "sim"))

    def searcher(study):
        state = SearchState(total=config.trials)
        state.carry(store.records(), config.objectives)
        return StudySearcher(study=study, space=space, budget=None, shape=Shape(1, 28, 10), store=store,
                             objectives=config.objectives, trial_config={}, fidelity_name=config.fidelity.name,
                             state=state, on_record=lambda record, state: None)

    def step(s, i: int, finish: bool = True) -> bool:
        proposal = s.suggest(f"t{i}")
        if not isinstance(proposal, dict):
            return False
        if proposals is not None:
            proposals.append(proposal)
        if finish:
            h = proposal["arch_hash"]
            s.on_trial_complete(f"t{i}", {"status": "complete", "record": {
                "trial_id": proposal["trial_id"], "status": "complete", "arch": proposal["arch"], "arch_hash": h,
                "fidelity": config.fidelity.name, "accuracy": int(h[:6], 16) % 997 / 997,
                "polysemanticity": int(h[6:12], 16) % 991 / 991}})
            assert s.fatal is None, s.fatal
        return True

    s, i = searcher(runner.open_study(config, store, create=True)), 0
    if kill_after is not None:
        for _ in range(kill_after):
            step(s, i)
            i += 1
        step(s, i, finish=False)  # in flight when the driver is killed
        i += 1
        study = runner.open_study(config, store, create=False)
        runner.reconcile(study, store, config.objectives, None)
        s = searcher(study)
    while step(s, i):
        i += 1
    return [r.arch_hash for r in store.records()]


def test_a_trial_cut_by_a_kill_is_rerun_from_its_checkpoint_folder(tmp_path: Path) -> None:
    """The re-queued trial names the cut one (``resume_from``), so its training continues from that trial's
    checkpoint (tests/test_trial_resume.py) instead of starting over."""
    proposals: list[dict] = []
    _simulate(tmp_path / "run", seed=0, trials=8, kill_after=3, proposals=proposals)
    cut = proposals[3]
    rerun = proposals[4]
    assert "resume_from" not in cut and rerun["resume_from"] == cut["trial_id"]
    assert rerun["arch_hash"] == cut["arch_hash"] and rerun["trial_id"] != cut["trial_id"]
    assert not any("resume_from" in p for p in proposals[5:])


def test_a_resumed_search_continues_instead_of_replaying(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same seeds, with and without a kill: resumed runs propose as many distinct architectures as uninterrupted
    ones; with the sampler's seed replayed on resume (the old behaviour) they repeat the run's first proposals."""
    import nas.search.runner as runner

    seeds, trials, kill_after = range(4), 8, 2  # killed inside the first generation (population 4)

    def duplicates(kill: int | None, tag: str) -> int:
        out = 0
        for seed in seeds:
            hashes = _simulate(tmp_path / f"{tag}-{seed}", seed, trials, kill)
            assert len(hashes) == trials
            out += len(hashes) - len(set(hashes))
        return out

    uninterrupted = duplicates(None, "whole")
    resumed = duplicates(kill_after, "resumed")
    assert resumed <= uninterrupted
    monkeypatch.setattr(runner, "resumed_seed", lambda seed, told: seed)
    replayed = duplicates(kill_after, "replayed")
    assert replayed > resumed, (uninterrupted, resumed, replayed)


# ---- Ray addresses -----------------------------------------------------------------------------------------
@contextlib.contextmanager
def _not_ray_server() -> Iterator[int]:
    """A TCP server that, like PostgreSQL, accepts a connection, reads, and closes it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                with contextlib.suppress(OSError):
                    conn.recv(1024)
                    conn.sendall(b"E\x00\x00\x00\x08not ray")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()


def test_an_address_that_is_not_ray_fails_fast_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with _not_ray_server() as port:
        started = time.monotonic()
        code = main(["search", "--results-dir", str(tmp_path), "--run", "x", "--address", f"127.0.0.1:{port}",
                     "--trials", "1", *SYNTH])
        took = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 2 and took < 15, took
    assert _one_error(err)
    assert f"'127.0.0.1:{port}' answers, but not as a Ray cluster" in err
    assert list(tmp_path.iterdir()) == []


def test_a_local_run_ignores_a_stale_ray_current_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cluster file left by a `ray start` long gone (Ray would connect to it, and refuse num_cpus)."""
    temp = Path(tempfile.mkdtemp(prefix="nasray", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    try:
        (temp / "ray").mkdir()
        (temp / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{_free_port()}")
        monkeypatch.setenv("RAY_TMPDIR", str(temp))
        from ray._common.utils import get_ray_address_file

        assert Path(get_ray_address_file(None)).read_text().startswith("127.0.0.1:")  # Ray would read it
        code = main(["search", "--results-dir", str(tmp_path), "--run", "local", "--trials", "1", *SYNTH])
        assert code == 0, capsys.readouterr()
        assert len(_rows(tmp_path / "local")) == 1
    finally:
        shutil.rmtree(temp, ignore_errors=True)


# ---- SIGTERM and storage failures --------------------------------------------------------------------------
@pytest.mark.slow  # a full search under Ray, timing-dependent: run with make test-all
def test_sigterm_stops_like_ctrl_c_with_the_hint_and_no_running_trial(tmp_path: Path) -> None:
    run = tmp_path / "term"
    driver = Driver("search", "--results-dir", str(tmp_path), "--run", "term", "--trials", "4", "--seed", "5",
                    *SYNTH, "--set", "epochs=3")
    try:
        _wait_for(lambda: _records(run) >= 1 and _training(run), driver, "a trial in flight")
        os.kill(driver.pid, signal.SIGTERM)  # the driver only, as `timeout` or a scheduler does
        driver.wait(120)
    finally:
        driver.kill()
    out, err = driver.output()
    assert driver.returncode == 143, (out[-2000:], err[-2000:])
    assert f"nas search --resume --run {run}" in out and "Traceback" not in err
    states = _states(run)
    assert "RUNNING" not in states and "WAITING" in states  # the in-flight trial is queued to run again
    interrupted = [t for t in _study(run).trials if t.user_attrs.get("reason") == "interrupted; re-queued"]
    assert interrupted and not (run / "driver.lock").exists()
    kept = {r["trial_id"]: r for r in _rows(run)}
    assert main(["search", "--results-dir", str(tmp_path), "--run", "term", "--resume"]) == 0
    rows = _rows(run)
    assert len(rows) == 4 and all(kept[r["trial_id"]] == r for r in rows if r["trial_id"] in kept)
    assert {r["arch_hash"] for r in rows} >= {t.user_attrs.get("arch_hash") for t in interrupted}


@pytest.mark.slow  # a full search under Ray, timing-dependent: run with make test-all
def test_a_full_disk_mid_run_is_one_error_line_and_the_records_stay_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import nas.run.store

    real = nas.run.store.atomic_write_json
    writes: list[Path] = []

    def second_record_fails(path: Path, data: object) -> None:
        writes.append(Path(path))
        if len(writes) >= 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(nas.run.store, "atomic_write_json", second_record_fails)
    command = ["search", "--results-dir", str(tmp_path), "--run", "full", "--trials", "3", "--seed", "2", *SYNTH]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert _one_error(err), err
    run = tmp_path / "full"
    assert f"disk full at {writes[1]}" in err and f"nas search --resume --run {run}" in err
    assert len(_rows(run)) == 1 and _records(run) == 1
    first = (run / "trials" / f"{int(_rows(run)[0]['trial_id']):05d}" / "metrics.json").read_text()
    assert "RUNNING" not in _states(run) and not (run / "driver.lock").exists()
    monkeypatch.setattr(nas.run.store, "atomic_write_json", real)  # space freed
    assert main([*command, "--resume"]) == 0
    assert len(_rows(run)) == 3
    assert (run / "trials" / f"{int(_rows(run)[0]['trial_id']):05d}" / "metrics.json").read_text() == first


@pytest.mark.slow
def test_a_real_full_disk_mid_run_is_one_error_line_and_the_run_resumes_once_space_is_freed(tmp_path: Path) -> None:
    """The run folder on a small tmpfs, filled up after the first trial."""
    if os.getuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    disk = Path(tempfile.mkdtemp(prefix="nasfull", dir="/tmp"))
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True).returncode:
        disk.rmdir()
        pytest.skip("cannot mount a tmpfs here")
    try:
        run = disk / "full"
        driver = Driver("search", "--results-dir", str(disk), "--run", "full", "--trials", "4", "--seed", "4", *SYNTH,
                        "--set", "epochs=2")
        try:
            _wait_for(lambda: _records(run) >= 1, driver, "the first trial")
            kept = {p: p.read_bytes() for p in run.glob("trials/*/metrics.json")}
            with open(disk / "filler", "wb") as fh, contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            driver.wait()
        finally:
            driver.kill()
        out, err = driver.output()
        assert driver.returncode == 2, (out[-2000:], err[-2000:])
        assert _one_error(err) and "disk full at" in err and f"nas search --resume --run {run}" in err, err[-3000:]
        assert all(p.read_bytes() == data for p, data in kept.items())  # what was recorded is intact
        (disk / "filler").unlink()
        assert main(["search", "--results-dir", str(disk), "--run", "full", "--resume"]) == 0
        assert len(_rows(run)) == 4 and "RUNNING" not in _states(run)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
        shutil.rmtree(disk, ignore_errors=True)


def test_retrain_resume_says_from_which_epoch_it_continues(tmp_path: Path) -> None:
    import torch

    from nas.fidelity import get_fidelity
    from nas.retrain.job import resume_note
    from nas.retrain.plan import CHECKPOINT_NAME, Job
    from nas.train import _CHECKPOINT_KEYS, CHECKPOINT_FORMAT

    state = {key: 0 for key in _CHECKPOINT_KEYS}
    state.update(format=CHECKPOINT_FORMAT, epoch=3)
    torch.save(state, tmp_path / CHECKPOINT_NAME)
    fidelity = get_fidelity("full")
    job = Job(None, tmp_path, fidelity, seed=0, resume=True)  # type: ignore[arg-type]
    assert resume_note(job) == (f"resuming from its checkpoint after epoch 3 of {fidelity.epochs}: training "
                                "continues with epoch 4")
    assert resume_note(Job(None, tmp_path / "none", fidelity, seed=0, resume=True)) is None  # type: ignore[arg-type]

# ---- a real PostgreSQL server ------------------------------------------------------------------------------
PG_CTL = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")) + ([Path(p)] if (p := shutil.which("pg_ctl")) else [])


class Postgres:
    """A PostgreSQL server of its own: initdb on a temporary directory, a free loopback port, password auth."""

    def __init__(self) -> None:
        self.bin = PG_CTL[0].parent
        self.root = Path(tempfile.mkdtemp(prefix="naspg", dir="/tmp"))
        self.port = _free_port()
        self.password = "pw-" + os.urandom(6).hex()
        self.as_user: list[str] = []
        if os.getuid() == 0:  # initdb refuses root; Debian's package makes the postgres user
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres")
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self.as_user:
            shutil.chown(pwfile, "postgres")
        self._run("initdb", "-D", str(self.root / "data"), "-U", "nas", f"--pwfile={pwfile}", "-A", "scram-sha-256")
        pwfile.unlink()
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql://nas:{self.password}@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_user, str(self.bin / tool), *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", mode, "-w", "stop")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    if not PG_CTL:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are absent: apt-get install postgresql "
                    "(`make setup` installs it)")
    server = Postgres()
    try:
        yield server
    finally:
        server.close()


def _no_secret_in(folder: Path, secret: str) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"the password is written in {path}"


@pytest.mark.slow
def test_postgresql_search_kill_resume_two_drivers_refused_and_no_password_anywhere(
    tmp_path: Path, postgres: Postgres, capsys: pytest.CaptureFixture[str]
) -> None:
    url, secret = postgres.url, postgres.password
    outputs: list[str] = []
    run = tmp_path / "pg"
    command = ["search", "--results-dir", str(tmp_path), "--run", "pg", "--trials", "4", "--seed", "7", *SYNTH,
               "--set", "epochs=2"]
    # 1. plain postgresql:// (psycopg 3), the password in the URL; killed after the first trial
    first = Driver(*command, "--storage", url)
    try:
        _wait_for(lambda: _records(run) >= 1, first, "the first trial")
    finally:
        first.kill()
    outputs += first.output()
    config = yaml.safe_load((run / "run.yaml").read_text())
    assert config["storage"] == f"postgresql://nas:***@127.0.0.1:{postgres.port}/postgres"
    assert secret not in config["command"] and "nas:***@" in config["command"]

    # 2. resumed with the password from PGPASSWORD (run.yaml keeps none); two more drivers meanwhile are refused
    resumed = Driver("search", "--results-dir", str(tmp_path), "--run", "pg", "--resume",
                     env={**ENV, "PGPASSWORD": secret})
    try:
        _wait_for(lambda: read_owner(run / "driver.lock") is not None and
                  read_owner(run / "driver.lock").pid == resumed.pid and "RUNNING" in _states(run, url), resumed,
                  "the resumed driver's first trial")
        # the same folder: the run's lock
        assert main(["search", "--results-dir", str(tmp_path), "--run", "pg", "--resume"]) == 2
        err = capsys.readouterr().err
        assert f"is in use by another driver: pid {resumed.pid} on host {socket.gethostname()}" in err
        # another folder, the same study in the shared database: the study's advisory lock
        other = tmp_path / "elsewhere"
        assert main(["search", "--results-dir", str(other), "--run", "pg", "--storage", url, "--trials", "4",
                     *SYNTH]) == 2
        err = capsys.readouterr().err
        outputs.append(err)
        assert f"study 'pg' in PostgreSQL database postgres at 127.0.0.1:{postgres.port} is being driven by nas pid " \
               f"{resumed.pid} on {socket.gethostname()}" in err
        assert _one_error(err) and not (other / "pg").exists()
        resumed.wait()
    finally:
        resumed.kill()
    out, err = resumed.output()
    outputs += [out, err]
    assert resumed.returncode == 0, err[-3000:]
    rows = _rows(run)
    study = _study(run, url)
    assert len(rows) == 4 and "RUNNING" not in [t.state.name for t in study.trials]
    told = {t.number: t for t in study.trials}
    for row in rows:
        assert told[int(row["trial_id"])].user_attrs["arch_hash"] == row["arch_hash"]
    assert study.metric_names == ["accuracy", "polysemanticity"]  # what optuna-dashboard shows
    # a new run may not take a study name the database already holds
    assert main(["search", "--results-dir", str(tmp_path / "again"), "--run", "pg", "--storage", url, *SYNTH]) == 2
    err = capsys.readouterr().err
    outputs.append(err)
    assert "already holds a study named 'pg'" in err

    # 3. two new drivers at the same moment on one study name (two folders): one runs, the other is refused;
    #    a driver of another study in the same database meanwhile runs as well
    pair = [Driver("search", "--results-dir", str(tmp_path / f"twin{i}"), "--run", "twin", "--storage", url,
                   "--trials", "2", *SYNTH, "--set", "epochs=2") for i in (0, 1)]
    solo = Driver("search", "--results-dir", str(tmp_path), "--run", "solo", "--storage", url, "--trials", "1",
                  *SYNTH)
    try:
        for p in [*pair, solo]:
            p.wait()
    finally:
        for p in [*pair, solo]:
            p.kill()
    ends = [p.output() for p in pair]
    outputs += [text for end in [*ends, solo.output()] for text in end]
    assert solo.returncode == 0 and len(_rows(tmp_path / "solo")) == 1, solo.output()
    assert sorted(p.returncode for p in pair) == [0, 2], ends
    loser = ends[[p.returncode for p in pair].index(2)][1]
    assert _one_error(loser) and "is being driven by nas pid" in loser
    winner = _study(tmp_path / f"twin{[p.returncode for p in pair].index(0)}" / "twin", url)
    assert len([t for t in winner.trials if "arch" in t.user_attrs]) == 2  # not the proposals the pre-screen replaced

    # 4. PostgreSQL stopped mid-run: one error line; started again, the run resumes with every record intact
    stopped = Driver("search", "--results-dir", str(tmp_path), "--run", "down", "--trials", "3", "--storage", url,
                     *SYNTH, "--set", "epochs=2")
    try:
        _wait_for(lambda: _records(tmp_path / "down") >= 1, stopped, "the first trial")
        postgres.stop()
        stopped.wait()
    finally:
        stopped.kill()
    out, err = stopped.output()
    outputs += [out, err]
    assert stopped.returncode == 2, (out[-2000:], err[-2000:])
    assert _one_error(err), err[-3000:]
    assert f"PostgreSQL database postgres at 127.0.0.1:{postgres.port}, cannot be reached" in err
    assert f"nas search --resume --run {tmp_path / 'down'}" in err
    kept = _rows(tmp_path / "down")
    postgres.start()
    assert main(["search", "--results-dir", str(tmp_path), "--run", "down", "--resume", "--storage", url]) == 0
    rows = _rows(tmp_path / "down")
    assert len(rows) == 3 and all(r in rows for r in kept)

    # 5. a port that is not Ray's (PostgreSQL's) fails fast, with one line, leaving nothing
    started = time.monotonic()
    probe = subprocess.run([sys.executable, "-m", "nas.cli", "search", "--results-dir", str(tmp_path / "addr"),
                            "--address", f"127.0.0.1:{postgres.port}", *SYNTH], cwd=ROOT, env=ENV,
                           capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started
    outputs += [probe.stdout, probe.stderr]
    assert probe.returncode == 2 and took < 15, (took, probe.stderr)
    assert _one_error(probe.stderr) and "not as a Ray cluster" in probe.stderr
    assert not (tmp_path / "addr").exists()

    captured = capsys.readouterr()
    outputs += [captured.out, captured.err]
    assert not [o for o in outputs if secret in o], "the password was printed"
    _no_secret_in(tmp_path, secret)


# ---- a real local Ray cluster ------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_ray_cluster_runs_the_trials_and_local_runs_stay_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    temp = Path(tempfile.mkdtemp(prefix="nasray", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    port, node_port = _free_port(), _free_port()
    ray = Path(sys.executable).parent / "ray"
    head = subprocess.Popen([str(ray), "start", "--head", "--port", str(port), "--num-cpus", "3",
                             "--node-manager-port", str(node_port), "--temp-dir", str(temp / "ray"),
                             "--include-dashboard", "false", "--disable-usage-stats"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its daemons stay in this process group
    try:
        out, _ = head.communicate(timeout=180)
        assert head.returncode == 0, out[-3000:]
        address = f"127.0.0.1:{port}"
        command = ["search", "--results-dir", str(tmp_path), "--run", "cluster", "--trials", "1", *SYNTH]
        assert main([*command, "--address", address]) == 0
        out = capsys.readouterr().out
        assert "Ray: 3 CPU(s)" in out  # the cluster's (this machine has not 3 unless it says so)
        assert yaml.safe_load((tmp_path / "cluster" / "run.yaml").read_text())["address"] == address
        assert main(["search", "--results-dir", str(tmp_path), "--run", "cluster", "--resume", "--trials", "2"]) == 0
        assert "Ray: 3 CPU(s)" in capsys.readouterr().out  # the stored address, reused
        assert len(_rows(tmp_path / "cluster")) == 2
        # while the cluster runs and its address file is where Ray looks, a local run still starts its own Ray
        monkeypatch.setenv("RAY_TMPDIR", str(temp))
        from ray._common.utils import get_ray_address_file

        assert Path(get_ray_address_file(None)).is_file()
        assert main(["search", "--results-dir", str(tmp_path), "--run", "local", "--trials", "1", *SYNTH]) == 0
        assert f"Ray: {os.cpu_count()} CPU(s)" in capsys.readouterr().out
        # a gRPC port of the cluster that is not its GCS (the raylet's) fails fast with one line
        started = time.monotonic()
        assert main([*command[:4], "nogcs", "--address", f"127.0.0.1:{node_port}", *SYNTH]) == 2
        took = time.monotonic() - started
        err = capsys.readouterr().err
        assert took < 15 and _one_error(err), (took, err)
        assert not (tmp_path / "nogcs").exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        time.sleep(2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def test_trial_slots_share_the_cpus_among_the_workers_asked_for() -> None:
    from nas.errors import ConfigError
    from nas.ray_session import trial_slots

    assert trial_slots(None, None, 2) == (2, 1)  # the default: 2 CPUs a trial
    assert trial_slots(None, 2, 2) == (1, 2)  # --workers 2 alone: both run at once, a CPU each
    assert trial_slots(1, None, 2) == (1, 2)
    assert trial_slots(None, 4, 16) == (4, 4)
    assert trial_slots(None, 4, 2) == (1, 4)  # more workers than CPUs: one CPU each, Ray runs what fits
    with pytest.raises(ConfigError, match="more than the 2 CPU"):
        trial_slots(3, None, 2)
