"""User text that may name a file: check that it can be a path before asking the file system about it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from nas.errors import shown

MAX_PATH_BYTES = 4096  # PATH_MAX on Linux
MAX_NAME_BYTES = 255  # NAME_MAX: one component of a path


def path_problem(text: object) -> str | None:
    """Why ``text`` cannot be a path (too long, a NUL byte, not text), or ``None`` when it can."""
    if isinstance(text, Path):
        text = str(text)
    if not isinstance(text, str):
        return f"{type(text).__name__} {shown(text)} is not a path"
    if not text:
        return "an empty path"
    if "\0" in text:
        return "a path cannot contain a NUL character"
    try:
        encoded = os.fsencode(text)
    except UnicodeError:
        return "the path holds characters the file system cannot encode"
    if len(encoded) > MAX_PATH_BYTES:
        return f"{len(encoded):,} bytes is longer than any path ({MAX_PATH_BYTES:,})"
    longest = max(len(part) for part in encoded.split(b"/"))
    if longest > MAX_NAME_BYTES:
        return f"a name of {longest:,} bytes is longer than a file name can be ({MAX_NAME_BYTES})"
    return None


def path_kind(text: object) -> str | None:
    """``"file"``, ``"dir"``, ``"other"`` for an existing path, ``None`` otherwise; never raises."""
    if path_problem(text) is not None:
        return None
    try:
        mode = os.stat(str(text)).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return "file"
    return "dir" if stat.S_ISDIR(mode) else "other"


def folder_blocker(path: object) -> str | None:
    """Why no folder can be made or written at ``path`` (it or a parent is a file, or cannot be examined), or None.

    Looks at ``path`` and then up its parents to the first that exists; creates nothing, never raises.
    """
    problem = path_problem(path)
    if problem is not None:
        return problem
    target = Path(str(path))
    for p in (target, *target.parents):
        try:
            mode = os.stat(p).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            return f"{display_path(p)} cannot be examined: {exc.strerror or exc}"
        return None if stat.S_ISDIR(mode) else f"{display_path(p)} is a file, not a folder"
    return None


def display_path(path: object, limit: int = 120) -> str:
    """A path as a message shows it: as written when short and printable, else quoted and capped."""
    text = str(path) if isinstance(path, str | Path) else shown(path, limit)
    if len(text) <= limit and text.isprintable():
        return text
    return shown(text, limit)


def packaged_space(*parts: str) -> Path:
    """A file shipped inside the package (``nas/search_spaces/...``), found through importlib.resources, so an
    installed package finds its spaces and baselines from any working folder."""
    from importlib.resources import files

    found = files("nas").joinpath("search_spaces")
    for part in parts:
        found = found.joinpath(part)
    return Path(str(found))
