"""Experiment tracking of `nas search --tracking tensorboard,mlflow`: Ray Tune's own logger callbacks.

Opt-in. Ray Tune's automatic loggers are off (``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS``, set with the rest of its
environment in nas.ray_session), so without ``--tracking`` a run writes nothing beyond its run store. With it:

- ``tensorboard``: Ray's ``TBXLoggerCallback``; event files in each trial's folder under ``<run>/ray/``
  (``tensorboard --logdir <run>/ray``): validation accuracy after every epoch and every final metric;
- ``mlflow``: Ray's ``MLflowLoggerCallback``; an MLflow experiment named after the run, one MLflow run per
  trial with its configuration (architecture, fidelity, seed) as parameters and the same metrics. The store is
  ``sqlite:///<run>/mlflow.db`` (``mlflow ui --backend-store-uri sqlite:///<run>/mlflow.db``) unless
  ``--tracking-uri`` names another (an ``http(s)://`` tracking server, or a ``sqlite:///`` file). MLflow is an
  optional dependency: ``pip install 'bottleneck-nas[tracking]'`` (mlflow-skinny).

With tracking on, every trial reports its validation accuracy after each epoch (the per-epoch report ASHA
uses), so curves have one point per epoch.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nas.errors import ConfigError, shown

TRACKERS = ("tensorboard", "mlflow")
CONNECT_TIMEOUT_S = 5.0


def parse_tracking(text: str | None, uri: str | None) -> list[str]:
    """``tensorboard,mlflow`` → the trackers; ``uri`` (an MLflow tracking URI) only with mlflow, and reachable."""
    names = [] if text is None else [t.strip().lower() for t in text.split(",")]
    if text is not None and (not names or any(not n for n in names)):
        raise ConfigError(f"--tracking {shown(text)} names no tracker; give {' or '.join(TRACKERS)} (comma-separated)")
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise ConfigError(f"--tracking: unknown tracker {shown(unknown[0])}; choose from {', '.join(TRACKERS)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"--tracking {shown(text)} names a tracker twice")
    if uri is not None and "mlflow" not in names:
        raise ConfigError("--tracking-uri is MLflow's tracking URI; give it with --tracking mlflow")
    if "mlflow" in names:
        try:
            import mlflow  # noqa: F401
        except ImportError:
            raise ConfigError("--tracking mlflow needs MLflow: pip install 'bottleneck-nas[tracking]' "
                              "(or pip install mlflow-skinny)") from None
        if uri is not None:
            check_uri(uri)
    return names


def check_uri(uri: str) -> None:
    """An ``http(s)://`` server that accepts a connection, or a ``sqlite:///`` file whose folder exists."""
    from nas.storage import mask_url

    shown_uri = shown(str(mask_url(uri)), 120)
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise ConfigError(f"--tracking-uri {shown_uri} names no host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            with socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT_S):
                pass
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--tracking-uri {shown_uri} cannot be reached ({exc}); start the MLflow server or "
                              "leave the option out (a sqlite store in the run folder)") from None
    elif parts.scheme == "sqlite":
        from sqlalchemy.engine import make_url

        from nas.space.paths import display_path, path_kind

        database = make_url(uri).database
        if not database or database == ":memory:" or path_kind(Path(database).parent) != "dir":
            raise ConfigError(f"--tracking-uri {shown_uri}: give a sqlite file in a folder that exists "
                              f"({display_path(database) if database else 'none given'})")
    else:
        raise ConfigError(f"--tracking-uri {shown_uri}: use http(s)://HOST:PORT (a tracking server) or "
                          "sqlite:///PATH (a local store)")


def tracking_callbacks(names: list[str], uri: str | None, run_dir: Path, run_name: str) -> list[Any]:
    """Ray Tune callbacks for the trackers named (none: an empty list)."""
    callbacks: list[Any] = []
    if "tensorboard" in names:
        from ray.tune.logger import TBXLoggerCallback

        callbacks.append(TBXLoggerCallback())
    if "mlflow" in names:
        import warnings

        from ray.air.integrations.mlflow import MLflowLoggerCallback

        with warnings.catch_warnings():  # MLflow's store module uses a deprecated SQLAlchemy loader at import
            warnings.filterwarnings("ignore", message=".*noload.*")
            import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
        callbacks.append(MLflowLoggerCallback(tracking_uri=uri or f"sqlite:///{run_dir.resolve()}/mlflow.db",
                                              experiment_name=run_name, save_artifact=False))
    return callbacks
