"""Strict YAML schema of a search-space file: parse, validate, and name every error's place.

Top-level keys (all but ``stages`` optional)::

    name: bottleneck              # defaults to the file stem
    description: free text
    stem:   {width: 16, kernel: 3, stride: 1, pool: false}   # activation: <name> (else the first stage's)
    stages:                       # one mapping per stage
      - {stride: 1, depth: [1, 2], width: 16}      # depth: int or list; width: channels
      - {stride: 2, depth: 2, width: 32, block: inverted, expansion: [4, 6]}  # per-stage overrides
      - {stride: 2, depth: 1, width: 40, expanded: 96, se: 0.25}  # expanded: the hidden width itself
      - stride: 2                 # blocks that differ: one mapping per block (the first one strides);
        width: 48                 # the stage's keys are every block's defaults; each becomes a stage
        blocks: [{kernel: 3, expanded: 120}, {kernel: 5, expanded: 144, activation: hardswish}]
    head:   {width: null, hidden: null, dropout: 0.0}  # optional 1x1 conv and hidden linear layer
    choices:                      # the decisions; a list, a single value, or {values: [...], per: network|stage}
      block:      {values: [basic, inverted], per: network}
      expansion:  [1, 2, 4, 6]    # per stage by default
      activation: [relu, relu2]
      depthwise:  [true, false]
      kernel:     [3, 5]
      norm:       [batch, layer]
      se:         [0, 0.25]       # squeeze-excitation ratio (0: none); read by inverted blocks only
      se_of: expanded             # se_of, se_activation, se_gate: the SE's form, one value each
      se_activation: relu         # (per network, or per stage as a stage key)
      se_gate: hardsigmoid
    budget: {params: 1.5M, tolerance: 0.05, divisor: 8}
    input:  {resolution: 224, channels: 3, classes: 1000}  # shape `describe` uses; data sets override

Widths are absolute channel counts when no budget is in force and reference widths,
scaled together by the budget solver, when one is. Every number obeys the field rules of
``nas.space.rules`` (the same rules the architecture-string parser applies): widths 1 … 16,384,
stage kernels odd (1 … 15), stage strides 1 or 2, stem stride 1, 2 or 4 with an odd kernel or an
even patchify kernel (equal to the stride, or at stride 1), depths 1 … 128, at most 32 stages (after a
stage's ``blocks`` are counted one stage each), expansion a number 1 … 16 (``expanded`` at least the
block's input width), SE ratio 0 or in (0, 1].

The file itself is read defensively: at most 64 KiB (``MAX_FILE_BYTES``; shipped files are 1–2 KB) of
UTF-8 text, nested at most 16 levels (``MAX_DEPTH``), with no duplicate key in any mapping, no merge
key (``<<``), and **no YAML aliases** (``*name``): a space file is short, and aliases are how a 1 KB
file expands to gigabytes (the "billion laughs"), so an alias is refused where it stands, before
anything is expanded. Anchors (``&name``) alone are harmless and ignored. A ``description`` of any
length up to the file limit is kept as written; whoever prints it caps what is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.errors import NASError, SpaceError, shown
from nas.space import rules
from nas.space.budget import Budget, check_divisor, check_tolerance, parse_budget
from nas.space.paths import display_path, path_problem
from nas.space.vocabulary import ACTIVATIONS, FAMILIES, NORMS, SE_BASES, SE_GATES

MAX_FILE_BYTES = 64 * 1024
MAX_DEPTH = 16
MAX_NAME_LENGTH = 255

CHOICE_NAMES: tuple[str, ...] = (
    "block", "expansion", "activation", "depthwise", "kernel", "norm", "se", "se_of", "se_activation", "se_gate"
)
CHOICE_DEFAULTS: dict[str, Any] = {
    "block": "inverted",
    "expansion": 1,
    "activation": "relu",
    "depthwise": True,
    "kernel": 3,
    "norm": "batch",
    "se": 0.0,
    "se_of": "expanded",
    "se_activation": "relu",
    "se_gate": "hardsigmoid",
}
# The form of squeeze-excitation is fixed (one value, per network or per stage); its ratio is searched.
SE_FORM: tuple[str, ...] = ("se_of", "se_activation", "se_gate")
PER_VALUES = ("stage", "network")

_TOP_KEYS = {"name", "description", "input", "stem", "stages", "head", "choices", "budget"}
_INPUT_KEYS = {"resolution", "channels", "classes"}
DEFAULT_INPUT = {"resolution": 28, "channels": 1, "classes": 10}  # Fashion-MNIST
_STEM_KEYS = {"width", "kernel", "stride", "pool", "activation"}
_STAGE_KEYS = {"stride", "depth", "width", "expanded", "blocks", *CHOICE_NAMES}
_HEAD_KEYS = {"width", "hidden", "dropout"}
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

    def description_excerpt(self, limit: int = 300) -> str:
        """The description as a display shows it: whitespace folded, at most ``limit`` characters (kept whole)."""
        head = " ".join(self.description[: limit * 4].split())
        if len(head) <= limit and len(self.description) <= limit * 4:
            return head
        return head[: limit - 1] + f"… ({len(self.description):,} characters)"


class _Where:
    """Builds error messages that name the file and the key path."""

    def __init__(self, source: str) -> None:
        self.source = display_path(source)

    def fail(self, path: str, message: str) -> SpaceError:
        return SpaceError(f"{self.source}: {path}: {message}")


def _unknown_keys(where: _Where, path: str, data: dict[str, Any], allowed: set[str]) -> None:
    extra = [key for key in data if key not in allowed]
    if extra:
        raise where.fail(path, f"unknown key {shown(extra[0])}; allowed keys: {', '.join(sorted(allowed))}")


def _mapping(where: _Where, path: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise where.fail(path, f"must be a mapping, got {type(value).__name__} {shown(value)}")
    return value


def _ruled(where: _Where, path: str, field: str, value: Any) -> int:
    """``value`` if the field rule ``field`` (``nas.space.rules``) allows it, else a SpaceError naming ``path``."""
    problem = rules.problem(field, value)
    if problem is not None:
        raise where.fail(path, ("kernel " if field == "kernel" else "") + problem)
    return value


def _word(where: _Where, path: str, what: str, value: Any, allowed: Any) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise where.fail(path, f"unknown {what} {shown(value)}; allowed: {', '.join(allowed)}")
    return value


def _check_value(where: _Where, path: str, name: str, value: Any) -> Any:
    if name == "block":
        return _word(where, path, "block", value, FAMILIES)
    if name in ("activation", "se_activation"):
        return _word(where, path, "activation", value, ACTIVATIONS)
    if name == "se_of":
        return _word(where, path, "squeeze-excitation base", value, SE_BASES)
    if name == "se_gate":
        return _word(where, path, "squeeze-excitation gate", value, SE_GATES)
    if name == "expansion":
        return rules.canonical_expansion(_ruled(where, path, name, value))
    if name == "se":
        return float(_ruled(where, path, name, value))
    if name == "norm":
        return _word(where, path, "norm", value, NORMS)
    if name == "depthwise":
        if not isinstance(value, bool):
            raise where.fail(path, f"must be true or false, got {shown(value)}")
        return value
    return _ruled(where, path, name, value)


def _values(where: _Where, path: str, name: str, raw: Any) -> tuple[Any, ...]:
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise where.fail(path, "needs at least one value")
    values = tuple(_check_value(where, f"{path}[{i}]", name, v) for i, v in enumerate(items))
    if len(set(values)) != len(values):
        raise where.fail(path, f"lists a value twice: {shown(list(values))}")
    if name in SE_FORM and len(values) > 1:
        raise where.fail(path, f"takes one value (the form of squeeze-excitation is not searched), got {shown(items)}")
    return values


def _parse_choice(where: _Where, name: str, raw: Any) -> Choice:
    path = f"choices.{name}"
    if isinstance(raw, dict):
        _unknown_keys(where, path, raw, _CHOICE_KEYS)
        if "values" not in raw:
            raise where.fail(path, "a mapping choice needs 'values'")
        per = raw.get("per", "stage")
        if not isinstance(per, str) or per not in PER_VALUES:
            raise where.fail(f"{path}.per", f"unknown value {shown(per)}; allowed: {', '.join(PER_VALUES)}")
        return Choice(name, _values(where, f"{path}.values", name, raw["values"]), per)
    return Choice(name, _values(where, path, name, raw))


def _stage_entries(where: _Where, index: int, raw: Any) -> list[tuple[str, dict[str, Any]]]:
    """A stage mapping as (key path, mapping) pairs: itself, or one per entry of its ``blocks`` list.

    The stage's keys are every block's defaults; the first block takes the stage's stride, the others
    stride 1; each block is one block (depth 1) unless it says otherwise.
    """
    path = f"stages[{index}]"
    data = _mapping(where, path, raw)
    _unknown_keys(where, path, data, _STAGE_KEYS)
    if "blocks" not in data:
        return [(path, data)]
    blocks = data["blocks"]
    if not isinstance(blocks, list) or not blocks:
        raise where.fail(f"{path}.blocks", f"must be a non-empty list of block mappings, got {shown(blocks)}")
    if "depth" in data and data["depth"] != len(blocks):
        raise where.fail(
            f"{path}.depth", f"is {shown(data['depth'])} but {len(blocks)} blocks are listed; give one of the two"
        )
    shared = {key: value for key, value in data.items() if key not in ("blocks", "depth")}
    entries = []
    for j, block in enumerate(blocks):
        block_path = f"{path}.blocks[{j}]"
        block = _mapping(where, block_path, block)
        _unknown_keys(where, block_path, block, _STAGE_KEYS - {"blocks", "stride"})
        merged = {**shared, "depth": 1, **block}
        merged["stride"] = shared.get("stride", 1) if j == 0 else 1
        entries.append((block_path, merged))
    return entries


def _parse_stage(where: _Where, path: str, data: dict[str, Any], c_in: int) -> StageSpec:
    """One stage mapping; ``c_in`` is the width before it (the stem's or the previous stage's)."""
    for key in ("width", "depth"):
        if key not in data:
            raise where.fail(path, f"missing key '{key}'")
    stride = _ruled(where, f"{path}.stride", "stride", data.get("stride", 1))
    width = _ruled(where, f"{path}.width", "width", data["width"])
    depths = _values(where, f"{path}.depth", "depth", data["depth"])
    overrides = {
        name: _values(where, f"{path}.{name}", name, data[name]) for name in CHOICE_NAMES if name in data
    }
    if "expanded" in data:
        if "expansion" in data:
            raise where.fail(path, "give 'expansion' (a ratio) or 'expanded' (a width), not both")
        overrides["expansion"] = _expansions(where, f"{path}.expanded", data["expanded"], c_in)
    return StageSpec(stride=stride, width=width, depths=tuple(sorted(depths)), overrides=overrides)


def _expansions(where: _Where, path: str, raw: Any, c_in: int) -> tuple[Any, ...]:
    """``expanded`` widths as expansions of the stage's first block input ``c_in`` (the later blocks of the
    stage expand their own input by the same ratio)."""
    widths = _values(where, path, "width", raw)
    for width in widths:
        if width < c_in:
            raise where.fail(path, f"expanded width {width} is below the block's input width {c_in}")
        if width > rules.EXPANSION_MAX * c_in:
            raise where.fail(
                path, f"expanded width {width} is more than {rules.EXPANSION_MAX} x the block's input width {c_in}"
            )
    return tuple(rules.canonical_expansion(width / c_in) for width in widths)


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
    except NASError as exc:  # BudgetError: re-raise with the place named
        raise where.fail("budget", str(exc)) from None


def _parse_stem(where: _Where, raw: Any) -> dict[str, Any]:
    stem = _mapping(where, "stem", raw)
    _unknown_keys(where, "stem", stem, _STEM_KEYS)
    parsed = {
        "width": _ruled(where, "stem.width", "stem.width", stem.get("width", 16)),
        "kernel": _ruled(where, "stem.kernel", "stem.kernel", stem.get("kernel", 3)),
        "stride": _ruled(where, "stem.stride", "stem.stride", stem.get("stride", 1)),
        "pool": stem.get("pool", False),
        "activation": None
        if stem.get("activation") is None
        else _word(where, "stem.activation", "activation", stem["activation"], ACTIVATIONS),
    }
    if not isinstance(parsed["pool"], bool):
        raise where.fail("stem.pool", f"must be true or false, got {shown(parsed['pool'])}")
    problem = rules.stem_problem(parsed["kernel"], parsed["stride"])
    if problem is not None:
        raise where.fail("stem", problem)
    return parsed


def _parse_head(where: _Where, raw: Any) -> dict[str, Any]:
    head = _mapping(where, "head", {} if raw is None else raw)
    _unknown_keys(where, "head", head, _HEAD_KEYS)
    width = head.get("width")
    if width is not None:
        _ruled(where, "head.width", "head.width", width)
    hidden = head.get("hidden")
    if hidden is not None:
        _ruled(where, "head.hidden", "head.hidden", hidden)
    dropout = head.get("dropout", 0.0)
    problem = rules.dropout_problem(dropout)
    if problem is not None:
        raise where.fail("head.dropout", problem)
    return {"width": width, "hidden": hidden, "dropout": float(dropout)}


def parse_space(data: Any, source: str = "<space>") -> SpaceSpec:
    """Validate a loaded YAML document; every error names the source, the key path and the allowed values."""
    where = _Where(source)
    data = _mapping(where, "(top level)", data)
    _unknown_keys(where, "(top level)", data, _TOP_KEYS)
    if "stages" not in data:
        raise where.fail("(top level)", "missing key 'stages'")
    stem = _parse_stem(where, data.get("stem", {"width": 16}))
    if not isinstance(data["stages"], list) or not data["stages"]:
        raise where.fail("stages", "must be a non-empty list of stage mappings")
    problem = rules.stages_problem(len(data["stages"]))
    if problem is not None:
        raise where.fail("stages", problem)
    entries = [entry for i, s in enumerate(data["stages"]) for entry in _stage_entries(where, i, s)]
    problem = rules.stages_problem(len(entries))
    if problem is not None:
        raise where.fail("stages", f"{problem} (each listed block is one)")
    stages_list: list[StageSpec] = []
    c_in = stem["width"]
    for path, entry in entries:
        stages_list.append(_parse_stage(where, path, entry, c_in))
        c_in = stages_list[-1].width
    stages = tuple(stages_list)
    head = _parse_head(where, data.get("head"))
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
    shape = {k: _ruled(where, f"input.{k}", k, shape.get(k, v)) for k, v in DEFAULT_INPUT.items()}
    name = data.get("name", Path(source).stem)
    if (
        not isinstance(name, str)
        or not name.strip()
        or len(name) > MAX_NAME_LENGTH
        or not name.isprintable()
    ):
        raise where.fail(
            "name", f"must be a non-empty line of at most {MAX_NAME_LENGTH} printable characters, got {shown(name)}"
        )
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        raise where.fail("description", f"must be text, got {type(description).__name__} {shown(description)}")
    return SpaceSpec(
        name=name,
        description=description or "",
        stem=stem,
        stages=stages,
        head=head,
        choices=choices,
        budget=budget,
        input=shape,
        source=source,
        raw=data,
    )


def _cut(text: str, limit: int = 160) -> str:
    """One line of at most ``limit`` characters (YAML's own messages can quote the offending text)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _yaml_tools() -> tuple[Any, type, type]:
    """(the yaml module, the fastest safe loader, a loader refusing duplicate keys), built once, lazily."""
    global _TOOLS
    if _TOOLS is None:
        import yaml

        base = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader  # libyaml when installed

        class Refused(yaml.MarkedYAMLError):
            """A document this language refuses (an alias, nesting too deep, a duplicate key)."""

        class StrictLoader(base):  # type: ignore[misc, valid-type]
            def construct_mapping(self, node: Any, deep: bool = False) -> Any:
                if isinstance(node, yaml.MappingNode):
                    seen: dict[Any, int] = {}
                    for key_node, _ in node.value:
                        if key_node.tag == "tag:yaml.org,2002:merge":
                            raise Refused(
                                problem="merge keys (<<) are not allowed; write the keys out",
                                problem_mark=key_node.start_mark,
                            )
                        key = self.construct_object(key_node, deep=True)
                        try:
                            first = seen.get(key)
                        except TypeError:
                            raise Refused(
                                problem="a mapping key must be a plain value", problem_mark=key_node.start_mark
                            ) from None
                        if first is not None:
                            raise Refused(
                                problem=f"duplicate key {shown(key, 40)} (first given at line {first})",
                                problem_mark=key_node.start_mark,
                            )
                        seen[key] = key_node.start_mark.line + 1
                return super().construct_mapping(node, deep=deep)

        StrictLoader.Refused = Refused  # type: ignore[attr-defined]
        _TOOLS = (yaml, base, StrictLoader)
    return _TOOLS


_TOOLS: tuple[Any, type, type] | None = None


def _screen(yaml: Any, base: type, text: str, refused: type, what: str) -> None:
    """Stream the parser's events once, refusing aliases and deep nesting before anything is built."""
    depth = 0
    for event in yaml.parse(text, Loader=base):
        if isinstance(event, yaml.AliasEvent):
            raise refused(
                problem=f"YAML aliases (*{_cut(str(event.anchor), 40)}) are not allowed in {what}; "
                "write the value out",
                problem_mark=event.start_mark,
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise refused(
                    problem=f"nested deeper than {MAX_DEPTH} levels; {what} needs about 4",
                    problem_mark=event.start_mark,
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def load_yaml(text: str, source: str, *, what: str = "a space file") -> Any:
    """Parse a space file's text strictly (see the module docstring); a malformed or refused document is a SpaceError.

    Other files of YAML the engine reads (a run's run.yaml) use the same loader; ``what`` names the kind
    of file in the messages.

    The parser's events are screened first (aliases, depth), so a "billion laughs" file is refused at its
    first alias and a deeply nested one at level ``MAX_DEPTH`` + 1, before any object is built.
    """
    yaml, base, strict = _yaml_tools()
    try:
        _screen(yaml, base, text, strict.Refused, what)
        return yaml.load(text, Loader=strict)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(part for part in (exc.context, exc.problem) if part) or "cannot parse"
        if "maximum nesting depth" in problem:  # PyYAML >= 6.0.3 caps flow nesting in its scanner
            problem = f"nested deeper than {MAX_DEPTH} levels; {what} needs about 4"
        raise SpaceError(f"{source}: malformed YAML{at}: {_cut(problem)}") from None
    except yaml.YAMLError as exc:  # e.g. a ReaderError: a control character in the text
        first = (str(exc).splitlines() or ["cannot parse"])[0]
        raise SpaceError(f"{source}: malformed YAML: {_cut(first)}") from None
    except ValueError as exc:
        if "integer string conversion" in str(exc):
            raise SpaceError(f"{source}: malformed YAML: a number has more than 4,300 digits") from None
        raise SpaceError(f"{source}: malformed YAML: {_cut(str(exc))}") from None
    except (OverflowError, RecursionError) as exc:
        raise SpaceError(f"{source}: malformed YAML: {_cut(str(exc))}") from None


def load_space_file(path: str | Path) -> SpaceSpec:
    """Read and validate a search-space YAML file (at most ``MAX_FILE_BYTES`` of UTF-8 text)."""
    import stat

    label = display_path(path)
    problem = path_problem(path)
    if problem is not None:
        raise SpaceError(f"search-space file {label}: {problem}")
    path = Path(path)
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise SpaceError(f"search-space file {label} does not exist") from None
    except PermissionError:
        raise SpaceError(f"search-space file {label}: permission denied") from None
    except OSError as exc:
        raise SpaceError(f"search-space file {label}: cannot read it ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise SpaceError(f"{label} is a directory, not a space file")
    if not stat.S_ISREG(info.st_mode):
        raise SpaceError(f"{label} is not a regular file, so not a space file")
    too_big = (
        f"{label} is too large for a space file ({{size}} bytes; at most {MAX_FILE_BYTES:,}); "
        "is it the right file?"
    )
    if info.st_size > MAX_FILE_BYTES:
        raise SpaceError(too_big.format(size=f"{info.st_size:,}"))
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except PermissionError:
        raise SpaceError(f"search-space file {label}: permission denied") from None
    except OSError as exc:
        raise SpaceError(f"search-space file {label}: cannot read it ({exc.strerror or exc})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise SpaceError(too_big.format(size=f"more than {MAX_FILE_BYTES:,}"))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpaceError(
            f"{label} is not UTF-8 text (byte {exc.start:,} cannot be decoded); is it a binary file?"
        ) from None
    if not text.strip():
        raise SpaceError(f"{label} is empty; a space file needs at least a 'stages' list")
    return parse_space(load_yaml(text, label), str(path))
