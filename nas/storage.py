"""The Optuna storage of a run: URLs with their passwords masked, opening, one driver per study, failures in one line.

* Passwords are never printed nor written: :func:`mask_url` / :func:`mask_text` turn
  ``postgresql://user:secret@host/db`` into ``postgresql://user:***@host/db`` (and ``password=…`` query
  values alike) wherever a URL or a command line is shown or stored. A stored URL keeps ``***`` in place
  of the password; :func:`connect_url` drops it again, so that libpq reads the password from
  ``PGPASSWORD`` or ``~/.pgpass`` on a resume (the URL given again on the command line works too).
* ``postgresql://`` needs the psycopg 3 driver (the ``postgres`` extra; ``make setup`` installs it):
  SQLAlchemy 2 maps the plain scheme to it.
* :func:`study_lock` lets one driver at a time drive a study in a shared storage: a PostgreSQL
  advisory lock (released by the server when the driver's connection dies) whose holder is named by
  its connection's ``application_name``, or a lock file beside a SQLite file.
* :func:`storage_errors` turns a storage failure met mid-run (a full disk, a database that stopped
  answering) into one :class:`~nas.errors.RunStoreError` line: what happened, where, and how to continue.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from nas.errors import ConfigError, NASError, RunStoreError, shown

MASK = "***"
DIALECTS = ("sqlite", "postgresql", "mysql")
POSTGRES_EXTRA = ("PostgreSQL storage needs the psycopg driver: pip install 'psycopg[binary]' (`make setup` "
                  "installs it, as the postgres extra: pip install -e '.[postgres]')")
_LOCK_NAMESPACE = 0x6E6173  # "nas": the first key of our PostgreSQL advisory locks

PASSWORD_KEYS = ("password", "passwd", "pwd")  # query-string keys whose values are passwords


def mask_url(url: str | None) -> str | None:
    """The URL with its password replaced by ***; None stays None.

    Read as a URL, not searched by pattern: the user information runs from ``://`` to the **last** ``@``
    (a password may hold ``@``, ``/``, ``#``, ``:``, ``?``, spaces or %-escapes), the password is what
    follows the user's first ``:``; in the query string every ``password``/``passwd``/``pwd`` value is
    masked. When the last ``@`` lies in the path or query, more than the password is hidden, never less.
    """
    if url is None:
        return None
    head, sep, rest = url.partition("://")
    if not sep:
        return _mask_query(url)
    at = rest.rfind("@")
    if at >= 0:
        user, colon, password = rest[:at].partition(":")
        if colon and password:
            rest = f"{user}:{MASK}{rest[at:]}"
    return head + sep + _mask_query(rest)


def _mask_query(text: str) -> str:
    from urllib.parse import unquote_plus

    base, mark, query = text.partition("?")
    if not mark:
        return text
    parts = []
    for part in query.split("&"):
        key, eq, _value = part.partition("=")
        parts.append(f"{key}={MASK}" if eq and unquote_plus(key).strip().lower() in PASSWORD_KEYS else part)
    return base + mark + "&".join(parts)


def mask_argv(argv: list[str]) -> list[str]:
    """A command line with every URL argument masked (``--storage URL`` and ``--storage=URL`` alike)."""
    out = []
    for arg in argv:
        option, eq, value = arg.partition("=")
        if eq and option.startswith("--") and "://" in value:
            out.append(f"{option}={mask_url(value)}")
        else:
            out.append(str(mask_url(arg)) if "://" in arg or "?" in arg else arg)
    return out


def mask_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Free text (an error message) with each URL-like word masked and every string of ``secrets`` replaced.

    Words are split on white space, so a URL whose password holds a space is masked only through ``secrets``
    (its password): mask a URL with :func:`mask_url` before putting it into text.
    """
    for secret in secrets:
        if secret and secret != MASK:
            text = text.replace(secret, MASK)
    return re.sub(r"\S*(?:://|[?&](?:password|passwd|pwd)=)\S*", lambda m: str(mask_url(m[0])), text,
                  flags=re.IGNORECASE)


def password_of(url: str) -> str | None:
    parsed = _parse(url)
    if parsed is None:
        return None
    return parsed.password or parsed.query.get("password")  # type: ignore[return-value]


def connect_url(url: str) -> str:
    """The URL to connect with: a masked password (as run.yaml stores it) is dropped, so libpq reads
    PGPASSWORD or ~/.pgpass instead."""
    parsed = _parse(url)
    if parsed is None or parsed.password != MASK:
        return url
    return parsed._replace(password=None).render_as_string(hide_password=False)  # set() keeps a None field


def same_storage(given: str, stored: str) -> bool:
    """Whether a URL given on --resume names the stored one (whose password is masked)."""
    return mask_url(given) == stored or given == stored


def check_url(url: str, option: str = "--storage") -> str:
    """The dialect of a URL SQLAlchemy can parse and Optuna can use; ConfigError (password masked) otherwise."""
    parsed = _parse(url)
    if parsed is None:
        raise ConfigError(f"{option} {shown(mask_url(url))} is not a database URL (e.g. postgresql://user@host/db "
                          "or sqlite:///path/study.db)")
    dialect = parsed.get_backend_name()
    if dialect not in DIALECTS:
        raise ConfigError(f"{option}: unsupported database {shown(dialect)}; use postgresql://… or sqlite:///…")
    return dialect


def describe(url: str) -> str:
    """Where a storage lives, for messages: 'PostgreSQL database nas at 127.0.0.1:5432' or 'SQLite file PATH'."""
    parsed = _parse(url)
    if parsed is None:
        return shown(mask_url(url))
    dialect = parsed.get_backend_name()
    if dialect == "sqlite":
        return f"SQLite file {parsed.database or '(in memory)'}"
    name = {"postgresql": "PostgreSQL", "mysql": "MySQL"}.get(dialect, dialect)
    host = f"{parsed.host or 'localhost'}" + (f":{parsed.port}" if parsed.port else "")
    return f"{name} database {parsed.database or '(default)'} at {host}"


def open_storage(url: str) -> Any:
    """An Optuna RDBStorage for ``url``; a ConfigError naming the storage (password masked) when it cannot open."""
    import optuna

    try:
        engine = {} if url.startswith("sqlite") else {"pool_pre_ping": True}
        return optuna.storages.RDBStorage(connect_url(url), engine_kwargs=engine)
    except Exception as exc:  # sqlalchemy and the drivers raise many kinds; all mean "cannot use this storage"
        raise ConfigError(f"cannot open the Optuna storage {mask_url(url)}: {_opening_problem(exc, url)}") from None


def _opening_problem(exc: BaseException, url: str) -> str:
    root = _root(exc)
    if isinstance(root, ModuleNotFoundError) or ("psycopg" in str(exc) and "No module" in str(exc)):
        return POSTGRES_EXTRA
    text = _first_line(root if root is not exc else exc, url)
    if "password authentication failed" in text or "no password supplied" in text:
        parsed = _parse(url)
        if parsed is not None and parsed.password == MASK:
            text += ("; run.yaml does not keep passwords: set PGPASSWORD or a ~/.pgpass line, or give --storage "
                     "with the password again")
    return text


@contextmanager
def storage_errors(url: str | None, continue_with: Callable[[], str]) -> Iterator[None]:
    """Turn a storage failure (full disk, database unreachable) raised in the block into one RunStoreError line.

    ``url`` is the Optuna storage (None: a SQLite file in the run folder); ``continue_with()`` says how to
    go on once the cause is fixed (e.g. "continue with `nas search --resume --run X`").
    """
    try:
        yield
    except NASError:
        raise
    except Exception as exc:
        failure = storage_failure(exc, url, continue_with)
        if failure is None:
            raise
        raise failure from None


def storage_failure(exc: BaseException, url: str | None, continue_with: Callable[[], str]) -> NASError | None:
    """The one-line error for a storage failure, or None when ``exc`` is not one."""
    chain = list(_chain(exc))
    for link in chain:
        if isinstance(link, OSError) and link.errno in (errno.ENOSPC, errno.EDQUOT):
            where = link.filename or "the run folder"
            return RunStoreError(f"disk full at {where}: {link.strerror or 'no space left on device'}. Every trial "
                                 f"finished so far is kept; free some space, then {continue_with()}")
    messages = [str(link) for link in chain]
    if any("database or disk is full" in m for m in messages):
        db = _sqlite_file(url)
        return RunStoreError(f"disk full at {db}: SQLite could not write to it. Every trial finished so far is kept; "
                             f"free some space, then {continue_with()}")
    if not any(_is_database_error(link) for link in chain):
        return None
    text = _first_line(chain[-1], url or "")
    if url is None or url.startswith("sqlite"):
        return RunStoreError(f"the Optuna storage, SQLite file {_sqlite_file(url)}, failed: {text}. Every trial "
                             f"finished so far is kept; fix that, then {continue_with()}")
    return RunStoreError(f"the Optuna storage, {describe(url)}, cannot be reached: {text}. Every trial finished so "
                         f"far is kept (in the run folder and the database); once the database answers again, "
                         f"{continue_with()}")


@contextmanager
def study_lock(url: str, study_name: str, command: str = "") -> Iterator[str | None]:
    """Hold a shared storage's study for one driver; RunStoreError naming the holder when another drives it.

    PostgreSQL: an advisory lock on a connection kept open for the block (the server frees it when
    that connection dies, however the driver ends). SQLite: a lock file beside the database file.
    Other databases: no lock (yields a note saying so).
    """
    parsed = _parse(url)
    dialect = parsed.get_backend_name() if parsed is not None else ""
    if dialect == "postgresql":
        with _postgres_lock(url, study_name) as note:
            yield note
    elif dialect == "sqlite" and parsed is not None and parsed.database not in (None, "", ":memory:"):
        from nas.lockfile import hold_lock

        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", study_name)[:100]
        path = Path(str(parsed.database)).absolute()
        if not path.parent.is_dir():
            raise ConfigError(f"cannot open the Optuna storage {mask_url(url)}: folder {path.parent} does not exist")
        with hold_lock(path.with_name(f"{path.name}.{safe}.lock"), f"study {study_name!r} in {path}",
                       command) as note:
            yield note
    else:
        yield f"note: {dialect or 'this'} storage has no driver lock here: run one driver at a time on this study"


@contextmanager
def _postgres_lock(url: str, study_name: str) -> Iterator[str | None]:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    key = zlib.crc32(study_name.encode("utf-8")) & 0x7FFFFFFF
    me = f"nas pid {os.getpid()} on {socket.gethostname()}"[:63]
    try:
        engine = sa.create_engine(connect_url(url), poolclass=NullPool)
        conn = engine.connect()
    except Exception as exc:
        raise ConfigError(f"cannot open the Optuna storage {mask_url(url)}: {_opening_problem(exc, url)}") from None
    try:
        conn.execute(sa.text("SELECT set_config('application_name', :me, false)"), {"me": me})
        got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:ns, :key)"), {"ns": _LOCK_NAMESPACE, "key": key})
        if not got.scalar():
            holder = conn.execute(sa.text(
                "SELECT a.application_name, a.client_addr::text, a.backend_start FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                "AND l.classid::bigint = :ns AND l.objid::bigint = :key AND l.objsubid = 2"),
                {"ns": _LOCK_NAMESPACE, "key": key}).first()
            who = "another driver"
            if holder is not None:
                app, client, since = holder
                who = f"{app or 'another driver'}" + (f" (connected from {client}" if client else " (")
                who += f", since {since:%Y-%m-%dT%H:%M:%S})" if since is not None else ")"
            raise RunStoreError(f"study {study_name!r} in {describe(url)} is being driven by {who}; two drivers on "
                                "one study would interleave its trials. Wait for that driver to end (or stop it), "
                                "then resume")
        conn.commit()
        yield None
    finally:
        with suppress(Exception):
            conn.execute(sa.text("SELECT pg_advisory_unlock(:ns, :key)"), {"ns": _LOCK_NAMESPACE, "key": key})
        with suppress(Exception):
            conn.close()
        engine.dispose()


# ---- helpers --------------------------------------------------------------------------------------
def _parse(url: str | None) -> Any:
    if url is None:
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except (ArgumentError, ValueError, TypeError):
        return None


def _sqlite_file(url: str | None) -> str:
    parsed = _parse(url) if url else None
    if parsed is not None and parsed.database:
        return str(parsed.database)
    return "study.db in the run folder"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def _root(exc: BaseException) -> BaseException:
    return list(_chain(exc))[-1]


def _is_database_error(exc: BaseException) -> bool:
    module = type(exc).__module__ or ""
    return (module.startswith(("sqlalchemy", "psycopg", "sqlite3", "pymysql", "MySQLdb"))
            or type(exc).__name__ in ("StorageInternalError", "OperationalError", "InterfaceError"))


def _first_line(exc: BaseException, url: str) -> str:
    """The first meaningful line of an error, without SQLAlchemy's wrapper and background link, password masked."""
    text = str(exc).strip()
    text = re.sub(r"^\((\w+\.)*\w+\)\s*", "", text)  # "(psycopg.OperationalError) ..."
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("(Background")]
    first = lines[0] if lines else type(exc).__name__
    secret = password_of(url) if url else None
    return mask_text(first, (secret,) if secret else ())[:300]
