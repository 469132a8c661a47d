"""Strict YAML schema of a search-space file: parse, validate, and name every error's place.

Top-level keys (all but ``stages`` optional)::

    name: bottleneck              # defaults to the file stem
    description: free text
    stem:   {width: 16, kernel: 3, stride: 1, pool: false}
    stages:                       # one mapping per stage
      - {stride: 1, depth: [1, 2], width: 16}      # depth: int or list; width: channels
      - {stride: 2, depth: 2, width: 32, block: inverted, expansion: [4, 6]}  # per-stage overrides
    head:   {width: null, dropout: 0.0}            # optional 1x1 conv before the classifier
    choices:                      # the decisions; a list, a single value, or {values: [...], per: network|stage}
      block:      {values: [basic, inverted], per: network}
      expansion:  [1, 2, 4, 6]    # per stage by default
      activation: [relu, relu2]
      depthwise:  [true, false]
      kernel:     [3, 5]
      norm:       [batch, layer]
    budget: {params: 1.5M, tolerance: 0.05, divisor: 8}
    input:  {resolution: 224, channels: 3, classes: 1000}  # shape `describe` uses; data sets override

Widths are absolute channel counts when no budget is in force and reference widths,
scaled together by the budget solver, when one is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.errors import SpaceError
from nas.space.budget import Budget, check_divisor, check_tolerance, parse_budget
from nas.space.vocabulary import ACTIVATIONS, FAMILIES, NORMS

CHOICE_NAMES: tuple[str, ...] = ("block", "expansion", "activation", "depthwise", "kernel", "norm")
CHOICE_DEFAULTS: dict[str, Any] = {
    "block": "inverted",
    "expansion": 1,
    "activation": "relu",
    "depthwise": True,
    "kernel": 3,
    "norm": "batch",
}
PER_VALUES = ("stage", "network")

_TOP_KEYS = {"name", "description", "input", "stem", "stages", "head", "choices", "budget"}
_INPUT_KEYS = {"resolution", "channels", "classes"}
DEFAULT_INPUT = {"resolution": 28, "channels": 1, "classes": 10}  # Fashion-MNIST
_STEM_KEYS = {"width", "kernel", "stride", "pool"}
_STAGE_KEYS = {"stride", "depth", "width", *CHOICE_NAMES}
_HEAD_KEYS = {"width", "dropout"}
_BUDGET_KEYS = {"params", "tolerance", "divisor"}
_CHOICE_KEYS = {"values", "per"}


@dataclass(frozen=True)
class Choice:
    """The allowed values of one decision and whether it is taken per stage or once per network."""

    name: str
    values: tuple[Any, ...]
    per: str = "stage"


@dataclass(frozen=True)
class StageSpec:
    """One stage of a space: fixed stride and width, depth options, per-stage choice overrides."""

    stride: int
    width: int
    depths: tuple[int, ...]
    overrides: dict[str, tuple[Any, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class SpaceSpec:
    """A validated search-space file."""

    name: str
    description: str
    stem: dict[str, Any]
    stages: tuple[StageSpec, ...]
    head: dict[str, Any]
    choices: dict[str, Choice]
    budget: Budget | None
    input: dict[str, int]
    source: str
    raw: dict[str, Any]


class _Where:
    """Builds error messages that name the file and the key path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> SpaceError:
        return SpaceError(f"{self.source}: {path}: {message}")


def _unknown_keys(where: _Where, path: str, data: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(data) - allowed, key=str)
    if extra:
        raise where.fail(path, f"unknown key {extra[0]!r}; allowed keys: {', '.join(sorted(allowed))}")


def _mapping(where: _Where, path: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise where.fail(path, f"must be a mapping, got {type(value).__name__} {value!r}")
    return value


def _positive_int(where: _Where, path: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise where.fail(path, f"must be a positive integer, got {value!r}")
    return value


def _check_value(where: _Where, path: str, name: str, value: Any) -> Any:
    if name == "block":
        if value not in FAMILIES:
            raise where.fail(path, f"unknown block {value!r}; allowed: {', '.join(FAMILIES)}")
    elif name == "activation":
        if value not in ACTIVATIONS:
            raise where.fail(path, f"unknown activation {value!r}; allowed: {', '.join(ACTIVATIONS)}")
    elif name == "norm":
        if value not in NORMS:
            raise where.fail(path, f"unknown norm {value!r}; allowed: {', '.join(NORMS)}")
    elif name == "depthwise":
        if not isinstance(value, bool):
            raise where.fail(path, f"must be true or false, got {value!r}")
    elif name == "kernel":
        value = _positive_int(where, path, value)
        if value % 2 == 0:
            raise where.fail(path, f"kernel must be odd (1, 3, 5, 7 …), got {value}")
    else:
        _positive_int(where, path, value)
    return value


def _values(where: _Where, path: str, name: str, raw: Any) -> tuple[Any, ...]:
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise where.fail(path, "needs at least one value")
    values = tuple(_check_value(where, f"{path}[{i}]", name, v) for i, v in enumerate(items))
    if len(set(values)) != len(values):
        raise where.fail(path, f"lists a value twice: {list(values)}")
    return values


def _parse_choice(where: _Where, name: str, raw: Any) -> Choice:
    path = f"choices.{name}"
    if isinstance(raw, dict):
        _unknown_keys(where, path, raw, _CHOICE_KEYS)
        if "values" not in raw:
            raise where.fail(path, "a mapping choice needs 'values'")
        per = raw.get("per", "stage")
        if per not in PER_VALUES:
            raise where.fail(f"{path}.per", f"unknown value {per!r}; allowed: {', '.join(PER_VALUES)}")
        return Choice(name, _values(where, f"{path}.values", name, raw["values"]), per)
    return Choice(name, _values(where, path, name, raw))


def _parse_stage(where: _Where, index: int, raw: Any) -> StageSpec:
    path = f"stages[{index}]"
    data = _mapping(where, path, raw)
    _unknown_keys(where, path, data, _STAGE_KEYS)
    for key in ("width", "depth"):
        if key not in data:
            raise where.fail(path, f"missing key {key!r}")
    stride = data.get("stride", 1)
    if stride not in (1, 2):
        raise where.fail(f"{path}.stride", f"must be 1 or 2, got {stride!r}")
    width = _positive_int(where, f"{path}.width", data["width"])
    depths = _values(where, f"{path}.depth", "depth", data["depth"])
    overrides = {
        name: _values(where, f"{path}.{name}", name, data[name]) for name in CHOICE_NAMES if name in data
    }
    return StageSpec(stride=stride, width=width, depths=tuple(sorted(depths)), overrides=overrides)


def parse_budget_block(where: _Where, raw: Any) -> Budget:
    data = _mapping(where, "budget", raw)
    _unknown_keys(where, "budget", data, _BUDGET_KEYS)
    if "params" not in data:
        raise where.fail("budget", "missing key 'params' (e.g. params: 1.5M)")
    try:
        return Budget(
            params=parse_budget(data["params"]),
            tolerance=check_tolerance(data.get("tolerance", 0.05)),
            divisor=check_divisor(data.get("divisor", 8)),
        )
    except Exception as exc:  # BudgetError: re-raise with the place named
        raise where.fail("budget", str(exc)) from None


def parse_space(data: Any, source: str = "<space>") -> SpaceSpec:
    """Validate a loaded YAML document; every error names the source, the key path and the allowed values."""
    where = _Where(source)
    data = _mapping(where, "(top level)", data)
    _unknown_keys(where, "(top level)", data, _TOP_KEYS)
    if "stages" not in data:
        raise where.fail("(top level)", "missing key 'stages'")
    stem = _mapping(where, "stem", data.get("stem", {"width": 16}))
    _unknown_keys(where, "stem", stem, _STEM_KEYS)
    stem = {
        "width": _positive_int(where, "stem.width", stem.get("width", 16)),
        "kernel": _positive_int(where, "stem.kernel", stem.get("kernel", 3)),
        "stride": _positive_int(where, "stem.stride", stem.get("stride", 1)),
        "pool": stem.get("pool", False),
    }
    if not isinstance(stem["pool"], bool):
        raise where.fail("stem.pool", f"must be true or false, got {stem['pool']!r}")
    if not isinstance(data["stages"], list) or not data["stages"]:
        raise where.fail("stages", "must be a non-empty list of stage mappings")
    stages = tuple(_parse_stage(where, i, s) for i, s in enumerate(data["stages"]))
    head = _mapping(where, "head", data.get("head") or {})
    _unknown_keys(where, "head", head, _HEAD_KEYS)
    head_width = head.get("width")
    if head_width is not None:
        _positive_int(where, "head.width", head_width)
    dropout = head.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise where.fail("head.dropout", f"must be a number in [0, 1), got {dropout!r}")
    choices_raw = _mapping(where, "choices", data.get("choices") or {})
    _unknown_keys(where, "choices", choices_raw, set(CHOICE_NAMES))
    choices = {
        name: _parse_choice(where, name, choices_raw[name])
        if name in choices_raw
        else Choice(name, (CHOICE_DEFAULTS[name],))
        for name in CHOICE_NAMES
    }
    budget = parse_budget_block(where, data["budget"]) if data.get("budget") is not None else None
    shape = _mapping(where, "input", data.get("input") or {})
    _unknown_keys(where, "input", shape, _INPUT_KEYS)
    shape = {k: _positive_int(where, f"input.{k}", shape.get(k, v)) for k, v in DEFAULT_INPUT.items()}
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str) or not name:
        raise where.fail("name", f"must be a non-empty string, got {name!r}")
    return SpaceSpec(
        name=name,
        description=str(data.get("description", "")),
        stem=stem,
        stages=stages,
        head={"width": head_width, "dropout": float(dropout)},
        choices=choices,
        budget=budget,
        input=shape,
        source=source,
        raw=data,
    )


def load_space_file(path: str | Path) -> SpaceSpec:
    """Read and validate a search-space YAML file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise SpaceError(f"search-space file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpaceError(f"{path}: malformed YAML{at}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpaceError(f"{path}: cannot read the file: {exc}") from None
    return parse_space(data, str(path))
