"""Architecture: one resolved point of a space, its canonical string, JSON form and hash.

Canonical string grammar (one token per part, parts joined by ``/``)::

    arch  := stem "/" stage ("/" stage)* ["/" head]
    stem  := "stem_c<width>_k<kernel>_s<stride>" ["_pool"] ["_" <activation>]
    stage := <block> "_d<depth>_s<stride>_c<width>" ["_e<expansion>"] "_k<kernel>"
             "_" <activation> ["_dw" | "_dense"] ["_bn" | "_ln"] ["_" <se>]
    se    := "se<ratio>-" ("exp" | "in") "-" <activation> "-" ("hsig" | "sig")
    head  := "head" ["_c<width>"] ["_h<hidden>"] ["_p<dropout>"]

Example: ``stem_c16_k3_s1/inverted_d2_s2_c24_e6_k3_relu6_dw_bn/head_c1280``.

The optional parts, each absent from the canonical string when unused:

- the stem's activation, when it differs from the first stage's (MobileNetV3: hard-swish stem, ReLU blocks);
- a fractional expansion (``e3.6667``: MobileNetV3's 24 -> 88 channels), kept to 4 decimals; the hidden
  width of a block is C·e when that is whole, else C·e rounded to a multiple of 8 (torchvision's
  ``_make_divisible``);
- squeeze-excitation after the depthwise conv of an ``inverted`` block (the only family that reads it):
  ``se0.25-exp-relu-hsig`` squeezes to 0.25 x the expanded width rounded to a multiple of 8, with ReLU and
  a hard-sigmoid gate (MobileNetV3); ``se0.25-in-silu-sig`` squeezes to 0.25 x the block's input width
  (floored, at least 1), with SiLU and a sigmoid gate (EfficientNet). ``se0.25`` alone means the first;
- a hidden classifier layer (``head_c576_h1024_p0.2``: pool -> linear 1024 -> activation of the last stage
  -> dropout -> linear, MobileNetV3's head).

Blocks that differ inside a stage (MobileNetV3, whose table changes kernel, expansion, activation and SE
from block to block) are written as consecutive stages of depth 1: a stage is a run of equal blocks.

Numbers are ASCII digits only (``c１６`` is an unknown field, not 16); ``<dropout>`` is a decimal such
as ``0.2``. Every number obeys the same field rules as a space file (``nas.space.rules``): widths
1 … 16,384 (``head_c0`` is refused: leave ``_c`` out for no head conv), stage kernels odd 1 … 15,
stage strides 1 or 2, the stem's stride 1, 2 or 4 with an odd kernel or an even patchify kernel
equal to the stride (``stem_c40_k4_s4``) or at stride 1 (its form on small inputs), depths 1 … 128,
expansion 1 … 16, dropout in [0, 1), 1 … 32 stages. A string is at most 4,096 characters
(``MAX_STRING``); a field or a word given twice is an error.

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

from nas.errors import SpaceError, shown
from nas.space import rules
from nas.space.vocabulary import (
    ACTIVATIONS,
    FAMILIES,
    FOLDED_DEPTHWISE,
    FOLDED_EXPANSION,
    FOLDED_NORM,
    FOLDED_SE,
    NORMS,
    SE_BASES,
    SE_GATES,
)

SMALL_INPUT_MAX = 64  # images of this many pixels or fewer drop stem downsampling
MAX_STRING = 4096  # characters of an architecture string (a real one has a few hundred)


@dataclass(frozen=True)
class Stem:
    """First convolution: k x k, stride s, norm, activation (the first stage's unless given); optional max-pool."""

    width: int
    kernel: int = 3
    stride: int = 1
    pool: bool = False
    activation: str | None = None


@dataclass(frozen=True)
class Stage:
    """``depth`` blocks of one family; the first block has the stride and changes the width."""

    block: str
    depth: int
    stride: int
    width: int
    expansion: int | float = 1
    kernel: int = 3
    activation: str = "relu"
    depthwise: bool = True
    norm: str = "batch"
    se: float = 0.0
    se_of: str = "expanded"
    se_activation: str = "relu"
    se_gate: str = "hardsigmoid"

    def folded(self) -> Stage:
        """The same stage with every choice its family ignores set to the canonical value."""
        info = FAMILIES[self.block]
        has_se = info.uses_se and self.se > 0
        return replace(
            self,
            expansion=rules.canonical_expansion(self.expansion) if info.uses_expansion else FOLDED_EXPANSION,
            depthwise=self.depthwise if info.uses_depthwise else FOLDED_DEPTHWISE,
            norm=self.norm if info.uses_norm else FOLDED_NORM,
            **({"se": float(self.se)} if has_se else FOLDED_SE),
        )

    @property
    def superlinear(self) -> bool:
        return ACTIVATIONS[self.activation]


@dataclass(frozen=True)
class Head:
    """Optional 1x1 conv to ``width`` (norm, activation), global average pool, optional hidden linear layer
    of ``hidden`` units (activation of the last stage), dropout, linear."""

    width: int | None = None
    dropout: float = 0.0
    hidden: int | None = None


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
        if self.stem.activation == self.stages[0].activation:
            object.__setattr__(self, "stem", replace(self.stem, activation=None))

    # ---- canonical forms -------------------------------------------------
    def folded(self) -> Architecture:
        return replace(self, stages=tuple(s.folded() for s in self.stages))

    def to_string(self) -> str:
        """Canonical, human-readable string (inactive choices omitted)."""
        parts = [_stem_token(self.stem, self.stages[0])]
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

    @property
    def downsamplings(self) -> int:
        """Halvings of the input size: the stem's stride (4 counts two), its max-pool, each stride-2 stage."""
        return self.stem.stride.bit_length() - 1 + int(self.stem.pool) + sum(s.stride == 2 for s in self.stages)

    def with_downsamplings(self, n: int) -> Architecture:
        """The network with its earliest stride-2 stages run at stride 1 until at most ``n`` halvings remain.

        This is how the small-input versions of ImageNet networks keep a useful final feature map (CIFAR
        MobileNetV2 runs its first stride-2 stage at stride 1); the stem is left as it is.
        """
        extra = self.downsamplings - n
        stages = list(self.stages)
        for i, stage in enumerate(stages):
            if extra <= 0:
                break
            if stage.stride == 2:
                stages[i] = replace(stage, stride=1)
                extra -= 1
        return replace(self, stages=tuple(stages))

    def with_widths(
        self, stem_width: int, stage_widths: list[int], head_width: int | None, hidden: int | None
    ) -> Architecture:
        """Same choices, new absolute widths (used by the budget solver)."""
        stages = tuple(replace(s, width=w) for s, w in zip(self.stages, stage_widths, strict=True))
        return replace(
            self,
            stem=replace(self.stem, width=stem_width),
            stages=stages,
            head=replace(self.head, width=head_width, hidden=hidden),
        )

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> Architecture:
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except (json.JSONDecodeError, RecursionError, ValueError) as exc:
                raise SpaceError(f"architecture JSON does not parse: {shown(str(exc), 160)}") from None
        try:
            if not isinstance(data, dict) or not isinstance(data["stages"], list):
                raise TypeError("expected {'stem': {...}, 'stages': [...], 'head': {...}}")
            stages_problem = rules.stages_problem(len(data["stages"]))
            if stages_problem is not None:
                raise SpaceError(f"invalid architecture: {stages_problem}")
            stem = Stem(**data["stem"])
            stages = tuple(Stage(**s) for s in data["stages"])
            head = Head(**data.get("head", {}))
        except (KeyError, TypeError, AttributeError) as exc:
            raise SpaceError(f"architecture JSON has a wrong shape: {shown(str(exc), 160)}") from None
        return cls(stem, stages, head)

    @classmethod
    def parse(cls, text: str) -> Architecture:
        """Parse a canonical (or non-canonical but equivalent) architecture string."""
        return parse_architecture(text)


# ---- validation --------------------------------------------------------------


def _check(arch: Architecture) -> None:
    """Apply the field rules of ``nas.space.rules`` (the rules a space file obeys) to every part."""

    def bad(msg: str) -> None:
        raise SpaceError(f"invalid architecture: {msg}")

    def ruled(where: str, name: str, field: str, value: object) -> None:
        problem = rules.problem(field, value)
        if problem is not None:
            bad(f"{where}{name} {problem}")

    if not isinstance(arch.stem, Stem) or not isinstance(arch.head, Head):
        bad(f"the stem must be a Stem and the head a Head, got {shown(arch.stem)} and {shown(arch.head)}")
    stem = arch.stem
    for name in ("width", "kernel", "stride"):
        ruled("stem ", name, f"stem.{name}", getattr(stem, name))
    if not isinstance(stem.pool, bool):
        bad(f"stem pool must be true or false, got {shown(stem.pool)}")
    if stem.activation is not None and (not isinstance(stem.activation, str) or stem.activation not in ACTIVATIONS):
        bad(f"stem: unknown activation {shown(stem.activation)}; allowed: {', '.join(ACTIVATIONS)}")
    problem = rules.stem_problem(stem.kernel, stem.stride)
    if problem is not None:
        bad(f"stem {problem}")
    problem = rules.stages_problem(len(arch.stages))
    if problem is not None:
        bad(problem)
    for i, s in enumerate(arch.stages):
        where = f"stage {i}: "
        if not isinstance(s, Stage):
            bad(f"{where}not a stage: {shown(s)}")
        for attr, allowed in (
            ("block", FAMILIES),
            ("activation", ACTIVATIONS),
            ("norm", NORMS),
            ("se_of", SE_BASES),
            ("se_activation", ACTIVATIONS),
            ("se_gate", SE_GATES),
        ):
            value = getattr(s, attr)
            if not isinstance(value, str) or value not in allowed:
                bad(f"{where}unknown {attr} {shown(value)}; allowed: {', '.join(allowed)}")
        for name in ("depth", "stride", "width", "expansion", "kernel", "se"):
            ruled(where, name, name, getattr(s, name))
        if not isinstance(s.depthwise, bool):
            bad(f"{where}depthwise must be true or false, got {shown(s.depthwise)}")
    if arch.head.width is not None:
        ruled("head ", "width", "head.width", arch.head.width)
    if arch.head.hidden is not None:
        ruled("head ", "hidden", "head.hidden", arch.head.hidden)
    problem = rules.dropout_problem(arch.head.dropout)
    if problem is not None:
        bad(f"head dropout {problem}")


# ---- string form ---------------------------------------------------------------

_NORM_TOKEN = {"batch": "bn", "layer": "ln"}
_TOKEN_NORM = {v: k for k, v in _NORM_TOKEN.items()}


_SE_BASE_TOKEN = {"expanded": "exp", "input": "in"}
_SE_GATE_TOKEN = {"hardsigmoid": "hsig", "sigmoid": "sig"}


def _stem_token(stem: Stem, first: Stage) -> str:
    out = f"stem_c{stem.width}_k{stem.kernel}_s{stem.stride}" + ("_pool" if stem.pool else "")
    if stem.activation is not None and stem.activation != first.activation:
        out += f"_{stem.activation}"
    return out


def _se_token(stage: Stage) -> str:
    return f"se{stage.se:g}-{_SE_BASE_TOKEN[stage.se_of]}-{stage.se_activation}-{_SE_GATE_TOKEN[stage.se_gate]}"


def _stage_token(stage: Stage) -> str:
    s = stage.folded()
    info = FAMILIES[s.block]
    out = [s.block, f"d{s.depth}", f"s{s.stride}", f"c{s.width}"]
    if info.uses_expansion:
        out.append(f"e{s.expansion:g}" if isinstance(s.expansion, float) else f"e{s.expansion}")
    out += [f"k{s.kernel}", s.activation]
    if info.uses_depthwise:
        out.append("dw" if s.depthwise else "dense")
    if info.uses_norm:
        out.append(_NORM_TOKEN[s.norm])
    if s.se > 0:
        out.append(_se_token(s))
    return "_".join(out)


def _head_token(head: Head) -> str:
    if head.width is None and head.hidden is None and head.dropout == 0.0:
        return ""
    out = ["head"]
    if head.width is not None:
        out.append(f"c{head.width}")
    if head.hidden is not None:
        out.append(f"h{head.hidden}")
    if head.dropout:
        out.append(f"p{head.dropout:g}")
    return "_".join(out)


_NUMBER = re.compile(r"([a-z])([0-9]+(?:\.[0-9]+)?)")  # ASCII only: `\d` and int() accept other digits


def _quote(token: str) -> str:
    return shown(token, 60)


def _split_fields(token: str, where: str) -> tuple[str, dict[str, str], list[str]]:
    head, *rest = token.split("_")
    numbers: dict[str, str] = {}
    words: list[str] = []
    for part in rest:
        m = _NUMBER.fullmatch(part)
        if m and m.group(1) not in numbers:
            numbers[m.group(1)] = m.group(2)
        elif m:
            raise SpaceError(f"{where}: field '{m.group(1)}' given twice in {_quote(token)}")
        elif not part.isascii() and any(ch.isdigit() for ch in part):
            raise SpaceError(f"{where}: {_quote(part)} in {_quote(token)}: write numbers with the ASCII digits 0-9")
        elif part in words:
            raise SpaceError(f"{where}: {_quote(part)} given twice in {_quote(token)}")
        else:
            words.append(part)
    return head, numbers, words


def _int(numbers: dict[str, str], key: str, where: str, token: str, default: int | None = None) -> int:
    if key not in numbers:
        if default is not None:
            return default
        raise SpaceError(f"{where}: {_quote(token)} lacks the '{key}<number>' field")
    text = numbers.pop(key)
    if not text.isdigit() or len(text) > 12:  # a decimal, or more digits than any rule allows
        raise SpaceError(f"{where}: '{key}' must be a whole number of at most 12 digits in {_quote(token)}")
    return int(text)


def parse_architecture(text: str) -> Architecture:
    """Parse an architecture string; every error names the offending part."""
    if not isinstance(text, str):
        raise SpaceError(f"an architecture string must be text, got {type(text).__name__} {shown(text)}")
    if len(text) > MAX_STRING:
        raise SpaceError(
            f"architecture string of {len(text):,} characters is too long (at most {MAX_STRING:,}): "
            f"{shown(text, 40)}"
        )
    text = text.strip()
    if "\0" in text or not text.isprintable():
        raise SpaceError(f"architecture string {shown(text)} holds control characters")
    tokens = [t for t in text.split("/") if t]
    if len(tokens) < 2:
        raise SpaceError(
            f"architecture string {shown(text)} needs a stem and at least one stage, e.g. "
            "'stem_c16_k3_s1/inverted_d2_s1_c16_e4_k3_relu_dw_bn'"
        )
    name, nums, words = _split_fields(tokens[0], "stem")
    if name != "stem":
        raise SpaceError(f"architecture string must start with a 'stem_…' part, got {_quote(tokens[0])}")
    stem_activations = [w for w in words if w in ACTIVATIONS]
    if len(stem_activations) > 1:
        raise SpaceError(f"stem: two activations in {_quote(tokens[0])}")
    stem = Stem(
        width=_int(nums, "c", "stem", tokens[0]),
        kernel=_int(nums, "k", "stem", tokens[0], 3),
        stride=_int(nums, "s", "stem", tokens[0], 1),
        pool="pool" in words,
        activation=stem_activations[0] if stem_activations else None,
    )
    known = {"pool", *stem_activations}
    if nums or set(words) - known:
        unknown = sorted(set(words) - known) + sorted(nums)
        raise SpaceError(f"stem: unknown fields {shown(unknown)} in {_quote(tokens[0])}")
    head = Head()
    stage_tokens = tokens[1:]
    if stage_tokens[-1].startswith("head"):
        head = _parse_head(stage_tokens.pop())
    if not stage_tokens:
        raise SpaceError(f"architecture string {shown(text)} has no stage")
    problem = rules.stages_problem(len(stage_tokens))
    if problem is not None:
        raise SpaceError(f"invalid architecture: {problem}")
    stages = tuple(_parse_stage(t, i) for i, t in enumerate(stage_tokens))
    return Architecture(stem, stages, head)


def _parse_head(token: str) -> Head:
    name, nums, words = _split_fields(token, "head")
    if name != "head" or words or set(nums) - {"c", "h", "p"}:
        raise SpaceError(f"head: cannot read {_quote(token)}; expected 'head[_c<width>][_h<hidden>][_p<dropout>]'")
    width = _int(nums, "c", "head", token) if "c" in nums else None
    hidden = _int(nums, "h", "head", token) if "h" in nums else None
    dropout = float(nums.pop("p", 0.0))
    return Head(width=width, dropout=dropout, hidden=hidden)


def _number(numbers: dict[str, str], key: str, default: float) -> float:
    """A decimal field (the regex admits only ASCII digits and one point)."""
    return float(numbers.pop(key)) if key in numbers else default


_SE_WORDS = {
    **{word: ("se_of", base) for base, word in _SE_BASE_TOKEN.items()},
    **{base: ("se_of", base) for base in SE_BASES},
    **{word: ("se_gate", gate) for gate, word in _SE_GATE_TOKEN.items()},
    **{gate: ("se_gate", gate) for gate in SE_GATES},
    **{act: ("se_activation", act) for act in ACTIVATIONS},
}
_SE_RATIO = re.compile(r"se([0-9]+(?:\.[0-9]+)?)")


def _parse_se(word: str, where: str, token: str) -> dict[str, Any]:
    """``se<ratio>[-exp|-in][-<activation>][-hsig|-sig]`` -> the stage's SE fields (defaults: MobileNetV3's)."""
    ratio, *parts = word.split("-")
    m = _SE_RATIO.fullmatch(ratio)
    if m is None:
        raise SpaceError(
            f"{where}: cannot read {_quote(word)} in {_quote(token)}; expected e.g. 'se0.25-exp-relu-hsig'"
        )
    fields: dict[str, Any] = {"se": float(m.group(1))}
    for part in parts:
        if part not in _SE_WORDS:
            raise SpaceError(
                f"{where}: unknown squeeze-excitation part {_quote(part)} in {_quote(token)}; "
                f"allowed: exp|in, an activation, hsig|sig"
            )
        key, value = _SE_WORDS[part]
        if key in fields:
            raise SpaceError(f"{where}: two {key.replace('_', ' ')} values in {_quote(word)}")
        fields[key] = value
    return fields


def _parse_stage(token: str, index: int) -> Stage:
    where = f"stage {index}"
    block, nums, words = _split_fields(token, where)
    if block not in FAMILIES:
        raise SpaceError(f"{where}: unknown block {_quote(block)} in {_quote(token)}; allowed: {', '.join(FAMILIES)}")
    activation = None
    depthwise: bool | None = None
    norm: str | None = None
    se: dict[str, Any] = {}
    for w in words:
        if w.startswith("se") and w[2:3].isdigit():
            if se:
                raise SpaceError(f"{where}: two squeeze-excitation parts in {_quote(token)}")
            se = _parse_se(w, where, token)
        elif w in ACTIVATIONS:
            if activation is not None:
                raise SpaceError(f"{where}: two activations in {_quote(token)}")
            activation = w
        elif w in ("dw", "dense"):
            if depthwise is not None:
                raise SpaceError(f"{where}: both dw and dense in {_quote(token)}")
            depthwise = w == "dw"
        elif w in _TOKEN_NORM:
            if norm is not None:
                raise SpaceError(f"{where}: both bn and ln in {_quote(token)}")
            norm = _TOKEN_NORM[w]
        else:
            raise SpaceError(
                f"{where}: unknown field {_quote(w)} in {_quote(token)}; activations: {', '.join(ACTIVATIONS)}; "
                "also dw|dense, bn|ln and se<ratio>"
            )
    if activation is None:
        raise SpaceError(f"{where}: {_quote(token)} names no activation; allowed: {', '.join(ACTIVATIONS)}")
    stage = Stage(
        block=block,
        depth=_int(nums, "d", where, token),
        stride=_int(nums, "s", where, token, 1),
        width=_int(nums, "c", where, token),
        expansion=_number(nums, "e", 1),
        kernel=_int(nums, "k", where, token, 3),
        activation=activation,
        depthwise=True if depthwise is None else depthwise,
        norm="batch" if norm is None else norm,
        **se,
    )
    if nums:
        raise SpaceError(f"{where}: unknown fields {sorted(nums)} in {_quote(token)}")
    return stage
