"""Architecture: one resolved point of a space, its canonical string, JSON form and hash.

Canonical string grammar (one token per part, parts joined by ``/``)::

    arch  := stem "/" stage ("/" stage)* ["/" head]
    stem  := "stem_c<width>_k<kernel>_s<stride>" ["_pool"]
    stage := <block> "_d<depth>_s<stride>_c<width>" ["_e<expansion>"] "_k<kernel>"
             "_" <activation> ["_dw" | "_dense"] ["_bn" | "_ln"]
    head  := "head" ["_c<width>"] ["_p<dropout>"]

Example: ``stem_c16_k3_s1/inverted_d2_s2_c24_e6_k3_relu6_dw_bn/head_c1280``.

A stage token only carries the choices its block family reads (see
``vocabulary.FAMILIES``): ``basic`` has no ``_e`` or ``_dw``; ``separable`` is
always depthwise and ``nodepth`` always dense, so neither carries ``_dw``;
``convnext`` is always LayerNorm, so it carries no norm. Parsing accepts the
unused tokens too (they are folded away), so two spellings of one network give
one canonical string and one semantic hash. Unknown tokens are errors.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from nas.errors import SpaceError
from nas.space.vocabulary import (
    ACTIVATIONS,
    FAMILIES,
    FOLDED_DEPTHWISE,
    FOLDED_EXPANSION,
    FOLDED_NORM,
    NORMS,
)

SMALL_INPUT_MAX = 64  # images of this many pixels or fewer drop stem downsampling


@dataclass(frozen=True)
class Stem:
    """First convolution: k x k, stride s, norm, activation of the first stage; optional 3x3/2 max-pool."""

    width: int
    kernel: int = 3
    stride: int = 1
    pool: bool = False


@dataclass(frozen=True)
class Stage:
    """``depth`` blocks of one family; the first block has the stride and changes the width."""

    block: str
    depth: int
    stride: int
    width: int
    expansion: int = 1
    kernel: int = 3
    activation: str = "relu"
    depthwise: bool = True
    norm: str = "batch"

    def folded(self) -> Stage:
        """The same stage with every choice its family ignores set to the canonical value."""
        info = FAMILIES[self.block]
        return replace(
            self,
            expansion=self.expansion if info.uses_expansion else FOLDED_EXPANSION,
            depthwise=self.depthwise if info.uses_depthwise else FOLDED_DEPTHWISE,
            norm=self.norm if info.uses_norm else FOLDED_NORM,
        )

    @property
    def superlinear(self) -> bool:
        return ACTIVATIONS[self.activation]


@dataclass(frozen=True)
class Head:
    """Optional 1x1 conv to ``width`` (norm, activation), global average pool, dropout, linear."""

    width: int | None = None
    dropout: float = 0.0


@dataclass(frozen=True)
class Architecture:
    """A fully resolved network: stem, stages and head with absolute widths (stages held folded)."""

    stem: Stem
    stages: tuple[Stage, ...]
    head: Head = field(default_factory=Head)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        _check(self)
        # Always hold the folded form, so equality is semantic: two spellings, one value.
        object.__setattr__(self, "stages", tuple(s.folded() for s in self.stages))

    # ---- canonical forms -------------------------------------------------
    def folded(self) -> Architecture:
        return replace(self, stages=tuple(s.folded() for s in self.stages))

    def to_string(self) -> str:
        """Canonical, human-readable string (inactive choices omitted)."""
        parts = [_stem_token(self.stem)]
        parts += [_stage_token(s) for s in self.stages]
        head = _head_token(self.head)
        if head:
            parts.append(head)
        return "/".join(parts)

    def __str__(self) -> str:
        return self.to_string()

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict of the folded architecture."""
        arch = self.folded()
        return {
            "stem": asdict(arch.stem),
            "stages": [asdict(s) for s in arch.stages],
            "head": asdict(arch.head),
        }

    @property
    def semantic_hash(self) -> str:
        """12 hex digits identifying the network; equal for every spelling of it."""
        return hashlib.sha1(self.to_string().encode()).hexdigest()[:12]

    @property
    def depth(self) -> int:
        return sum(s.depth for s in self.stages)

    def adapted_to_input(self, resolution: int) -> Architecture:
        """Drop stem downsampling (stride 1, no max-pool) for inputs of 64 px or less."""
        if resolution > SMALL_INPUT_MAX or (self.stem.stride == 1 and not self.stem.pool):
            return self
        return replace(self, stem=replace(self.stem, stride=1, pool=False))

    def with_widths(self, stem_width: int, stage_widths: list[int], head_width: int | None) -> Architecture:
        """Same choices, new absolute widths (used by the budget solver)."""
        stages = tuple(replace(s, width=w) for s, w in zip(self.stages, stage_widths, strict=True))
        return replace(
            self,
            stem=replace(self.stem, width=stem_width),
            stages=stages,
            head=replace(self.head, width=head_width),
        )

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> Architecture:
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise SpaceError(f"architecture JSON does not parse: {exc}") from None
        try:
            stem = Stem(**data["stem"])
            stages = tuple(Stage(**s) for s in data["stages"])
            head = Head(**data.get("head", {}))
        except (KeyError, TypeError) as exc:
            raise SpaceError(f"architecture JSON has a wrong shape: {exc}") from None
        return cls(stem, stages, head)

    @classmethod
    def parse(cls, text: str) -> Architecture:
        """Parse a canonical (or non-canonical but equivalent) architecture string."""
        return parse_architecture(text)


# ---- validation --------------------------------------------------------------


def _check(arch: Architecture) -> None:
    def bad(msg: str) -> None:
        raise SpaceError(f"invalid architecture: {msg}")

    if arch.stem.width < 1 or arch.stem.kernel < 1 or arch.stem.stride < 1:
        bad(f"stem width, kernel and stride must be positive, got {arch.stem}")
    if not arch.stages:
        bad("an architecture needs at least one stage")
    for i, s in enumerate(arch.stages):
        where = f"stage {i}"
        if s.block not in FAMILIES:
            bad(f"{where}: unknown block {s.block!r}; allowed: {', '.join(FAMILIES)}")
        if s.activation not in ACTIVATIONS:
            bad(f"{where}: unknown activation {s.activation!r}; allowed: {', '.join(ACTIVATIONS)}")
        if s.norm not in NORMS:
            bad(f"{where}: unknown norm {s.norm!r}; allowed: {', '.join(NORMS)}")
        for name in ("depth", "stride", "width", "expansion", "kernel"):
            value = getattr(s, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                bad(f"{where}: {name} must be a positive integer, got {value!r}")
        if not isinstance(s.depthwise, bool):
            bad(f"{where}: depthwise must be true or false, got {s.depthwise!r}")
    if arch.head.width is not None and arch.head.width < 1:
        bad(f"head width must be positive, got {arch.head.width}")
    if not 0.0 <= arch.head.dropout < 1.0:
        bad(f"head dropout must be in [0, 1), got {arch.head.dropout}")


# ---- string form ---------------------------------------------------------------

_NORM_TOKEN = {"batch": "bn", "layer": "ln"}
_TOKEN_NORM = {v: k for k, v in _NORM_TOKEN.items()}


def _stem_token(stem: Stem) -> str:
    return f"stem_c{stem.width}_k{stem.kernel}_s{stem.stride}" + ("_pool" if stem.pool else "")


def _stage_token(stage: Stage) -> str:
    s = stage.folded()
    info = FAMILIES[s.block]
    out = [s.block, f"d{s.depth}", f"s{s.stride}", f"c{s.width}"]
    if info.uses_expansion:
        out.append(f"e{s.expansion}")
    out += [f"k{s.kernel}", s.activation]
    if info.uses_depthwise:
        out.append("dw" if s.depthwise else "dense")
    if info.uses_norm:
        out.append(_NORM_TOKEN[s.norm])
    return "_".join(out)


def _head_token(head: Head) -> str:
    if head.width is None and head.dropout == 0.0:
        return ""
    out = ["head"]
    if head.width is not None:
        out.append(f"c{head.width}")
    if head.dropout:
        out.append(f"p{head.dropout:g}")
    return "_".join(out)


_NUMBER = re.compile(r"^([a-z])(\d+(?:\.\d+)?)$")


def _split_fields(token: str, where: str) -> tuple[str, dict[str, str], list[str]]:
    head, *rest = token.split("_")
    numbers: dict[str, str] = {}
    words: list[str] = []
    for part in rest:
        m = _NUMBER.match(part)
        if m and m.group(1) not in numbers:
            numbers[m.group(1)] = m.group(2)
        elif m:
            raise SpaceError(f"{where}: field {part!r} given twice in {token!r}")
        else:
            words.append(part)
    return head, numbers, words


def _int(numbers: dict[str, str], key: str, where: str, token: str, default: int | None = None) -> int:
    if key not in numbers:
        if default is not None:
            return default
        raise SpaceError(f"{where}: {token!r} lacks the '{key}<number>' field")
    try:
        return int(numbers.pop(key))
    except ValueError:
        raise SpaceError(f"{where}: '{key}' must be an integer in {token!r}") from None


def parse_architecture(text: str) -> Architecture:
    """Parse an architecture string; every error names the offending part."""
    text = text.strip()
    tokens = [t for t in text.split("/") if t]
    if len(tokens) < 2:
        raise SpaceError(
            f"architecture string {text!r} needs a stem and at least one stage, e.g. "
            "'stem_c16_k3_s1/inverted_d2_s1_c16_e4_k3_relu_dw_bn'"
        )
    name, nums, words = _split_fields(tokens[0], "stem")
    if name != "stem":
        raise SpaceError(f"architecture string must start with a 'stem_…' part, got {tokens[0]!r}")
    stem = Stem(
        width=_int(nums, "c", "stem", tokens[0]),
        kernel=_int(nums, "k", "stem", tokens[0], 3),
        stride=_int(nums, "s", "stem", tokens[0], 1),
        pool="pool" in words,
    )
    if nums or set(words) - {"pool"}:
        raise SpaceError(f"stem: unknown fields {sorted(set(words) - {'pool'}) + sorted(nums)} in {tokens[0]!r}")
    head = Head()
    stage_tokens = tokens[1:]
    if stage_tokens[-1].startswith("head"):
        head = _parse_head(stage_tokens.pop())
    if not stage_tokens:
        raise SpaceError(f"architecture string {text!r} has no stage")
    stages = tuple(_parse_stage(t, i) for i, t in enumerate(stage_tokens))
    return Architecture(stem, stages, head)


def _parse_head(token: str) -> Head:
    name, nums, words = _split_fields(token, "head")
    if name != "head" or words or set(nums) - {"c", "p"}:
        raise SpaceError(f"head: cannot read {token!r}; expected 'head[_c<width>][_p<dropout>]'")
    width = _int(nums, "c", "head", token, 0) or None
    dropout = float(nums.pop("p", 0.0))
    return Head(width=width, dropout=dropout)


def _parse_stage(token: str, index: int) -> Stage:
    where = f"stage {index}"
    block, nums, words = _split_fields(token, where)
    if block not in FAMILIES:
        raise SpaceError(f"{where}: unknown block {block!r} in {token!r}; allowed: {', '.join(FAMILIES)}")
    activation = None
    depthwise = True
    norm = "batch"
    for w in words:
        if w in ACTIVATIONS:
            if activation is not None:
                raise SpaceError(f"{where}: two activations in {token!r}")
            activation = w
        elif w in ("dw", "dense"):
            depthwise = w == "dw"
        elif w in _TOKEN_NORM:
            norm = _TOKEN_NORM[w]
        else:
            raise SpaceError(
                f"{where}: unknown field {w!r} in {token!r}; activations: {', '.join(ACTIVATIONS)}; "
                "also dw|dense and bn|ln"
            )
    if activation is None:
        raise SpaceError(f"{where}: {token!r} names no activation; allowed: {', '.join(ACTIVATIONS)}")
    stage = Stage(
        block=block,
        depth=_int(nums, "d", where, token),
        stride=_int(nums, "s", where, token, 1),
        width=_int(nums, "c", where, token),
        expansion=_int(nums, "e", where, token, 1),
        kernel=_int(nums, "k", where, token, 3),
        activation=activation,
        depthwise=depthwise,
        norm=norm,
    )
    if nums:
        raise SpaceError(f"{where}: unknown fields {sorted(nums)} in {token!r}")
    return stage
