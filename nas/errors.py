"""Every failure a user can cause is a NASError; the CLI prints it and exits 2."""

from __future__ import annotations


def shown(value: object, limit: int = 80) -> str:
    """A user value as an error message shows it: ``repr``-like, one line, at most about ``limit`` characters.

    A long string keeps its head and says its length (``'aaaa…' (12,345 characters)``); a container shows
    its first items and its size (``[1, 2, …] (5,000 items)``); a huge integer shows its number of digits.
    The work done is bounded by ``limit`` whatever the value (a string of a gigabyte, a list of a million
    items, a cyclic or deeply shared structure), so echoing a hostile value never hangs.
    """
    limit = max(8, limit)
    text, whole = _render(value, limit, 0)
    if whole is not None:
        text += f" ({whole})"
    return text


def _render(value: object, limit: int, depth: int) -> tuple[str, str | None]:
    """(text of at most ~``limit`` characters, a note on the full size when the text was cut)."""
    if isinstance(value, str | bytes | bytearray):
        head = repr(value[:limit])
        cut = len(value) > limit or len(head) > limit + 3
        if not cut:
            return head, None
        quote = head[-1]
        unit = "characters" if isinstance(value, str) else "bytes"
        return head[: limit - 1] + "…" + quote, f"{len(value):,} {unit}"
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value), None
    if isinstance(value, int):
        if value.bit_length() > 3 * limit:  # also stays clear of int -> str's 4,300-digit limit
            return f"<an integer of about {int(value.bit_length() * 0.30103) + 1:,} digits>", None
        text = repr(value)
        return (text, None) if len(text) <= limit else (text[: limit - 1] + "…", f"{len(text):,} digits")
    if isinstance(value, dict | list | tuple | set | frozenset):
        return _render_container(value, limit, depth)
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the error being reported
        text = f"<{type(value).__name__} object>"
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return (text, None) if len(text) <= limit else (text[: limit - 1] + "…", f"{len(text):,} characters")


def _render_container(value: dict | list | tuple | set | frozenset, limit: int, depth: int) -> tuple[str, str | None]:
    opening, closing = {dict: "{}", list: "[]", tuple: "()"}.get(type(value), "{}")
    if isinstance(value, set | frozenset) and not value:
        return f"{type(value).__name__}()", None
    size = f"{len(value):,} item{'s' if len(value) != 1 else ''}"
    if depth >= 4:
        return f"{opening}…{closing}", size
    items = iter(value.items()) if isinstance(value, dict) else iter(value)
    parts: list[str] = []
    used, complete = 2, True
    for item in items:
        room = limit - used
        if room < 4:
            parts.append("…")
            complete = False
            break
        if isinstance(value, dict):
            key, _ = _render(item[0], room, depth + 1)
            val, _ = _render(item[1], max(4, room - len(key) - 2), depth + 1)
            part = f"{key}: {val}"
        else:
            part, _ = _render(item, room, depth + 1)
        if len(part) > room:
            parts.append(part[: room - 1] + "…")
            complete = False
            break
        parts.append(part)
        used += len(part) + 2
    trailing = "," if isinstance(value, tuple) and len(value) == 1 else ""
    return opening + ", ".join(parts) + trailing + closing, None if complete else size


class NASError(Exception):
    """A user-facing failure with a one-paragraph message (no traceback shown)."""


class SpaceError(NASError):
    """A search-space file or architecture string is malformed or invalid."""


class BudgetError(NASError):
    """A budget is malformed, or no architecture can meet it."""


class DataError(NASError):
    """A data set is missing, corrupt or unusable."""


class ConfigError(NASError):
    """A command-line option or preset is unknown or inconsistent."""


class RunStoreError(NASError):
    """A run directory is missing, unreadable or inconsistent."""


class CheckpointError(NASError):
    """A checkpoint is corrupt or belongs to a different architecture."""


class ExportError(NASError):
    """An export could not be written or does not reproduce the model."""


class Diverged(NASError):
    """Training produced a non-finite loss; carries the step and the loss."""

    def __init__(self, step: int, loss: float) -> None:
        super().__init__(f"training diverged at step {step}: loss is {loss}")
        self.step = step
        self.loss = loss


class NonFiniteMetric(NASError):
    """A metric (an objective) came out NaN or infinite."""


class NonFiniteObjective(NASError):
    """An objective came out NaN or infinite (Optuna cannot be told NaN); the trial is recorded as failed."""
