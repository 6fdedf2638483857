"""The spec data model: frozen dataclasses, each carrying the file:line it came from.

A spec says, for one model family, what the traced graph's subgraphs become (rules → templates),
with which weights, dtypes, program and compute-kernel configs per mode, for which target, and
which accuracy the generated tests must reach."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ACTIVATION_LAYOUTS", "DTYPES", "FIDELITIES", "KIND_ACTIVATIONS", "KIND_TARGET", "KIND_TESTS", "KV_CACHE_KINDS", "PROGRAM_FIELDS",
    "PROGRAM_KINDS",
    "ComputeConfigSpec", "Loc", "MatchSpec", "OpSpec", "Override", "PatternSpec", "PrecisionSpec",
    "ProgramChoice", "Requirement", "Rule", "Spec", "Target", "Thresholds",
]  # fmt: skip

DTYPES = ("bfloat16", "float32", "bfloat8_b", "bfloat4_b")
FIDELITIES = ("LoFi", "HiFi2", "HiFi3", "HiFi4")
KV_CACHE_KINDS = ("static", "paged")
ACTIVATION_LAYOUTS = ("sharded", "interleaved")  # an image classifier's target.activations
PROGRAM_KINDS = ("auto", "dram_sharded", "2d", "1d", "interleaved")
_BLOCKS = ("in0_block_w", "out_subblock_h", "out_subblock_w", "out_block_h", "out_block_w", "per_core_M", "per_core_N")  # fmt: skip
# the integer fields a spec may set for each kind: the ttnn program config's own names, and `rows`,
# the row-chunk cap of a prefill matmul (a multiple of 32)
PROGRAM_FIELDS = {
    "auto": (), "interleaved": (), "2d": (*_BLOCKS, "rows"), "1d": _BLOCKS,
    "dram_sharded": ("in0_block_w", "per_core_M", "per_core_N"),
}  # fmt: skip


@dataclass(frozen=True)
class Loc:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class PatternSpec:
    name: str
    expr: str
    lets: tuple[tuple[str, str], ...]
    doc: str
    loc: Loc
    compiled: object = field(compare=False, repr=False, default=None)  # ttgen.match.engine.Pattern


@dataclass(frozen=True)
class Requirement:
    pattern: str
    count: int  # matches needed inside the boundary
    modes: tuple[str, ...]
    optional: bool  # captured when present, not required
    loc: Loc


@dataclass(frozen=True)
class MatchSpec:
    modules: tuple[str, ...]  # module path globs; `*` matches one path component
    require: tuple[Requirement, ...]
    when: tuple[str, ...]  # predicate names
    loc: Loc


@dataclass(frozen=True)
class ProgramChoice:
    kind: str  # one of PROGRAM_KINDS
    fields: tuple[
        tuple[str, int], ...
    ] = ()  # explicit program-config fields overriding the formula


@dataclass(frozen=True)
class OpSpec:
    name: str
    weight: str | None
    fidelity: tuple[tuple[str, str], ...]  # mode → precision fidelity key
    program: tuple[tuple[str, ProgramChoice], ...]  # mode → choice
    loc: Loc

    def fidelity_key(self, mode: str) -> str | None:
        return dict(self.fidelity).get(mode)

    def program_for(self, mode: str) -> ProgramChoice:
        return dict(self.program).get(mode, ProgramChoice("auto"))


@dataclass(frozen=True)
class Rule:
    name: str
    match: MatchSpec
    template: str
    weights: tuple[tuple[str, tuple[str, ...]], ...]  # our name → captures (several = fused on N)
    ops: tuple[OpSpec, ...]
    loc: Loc
    ignore: tuple[tuple[str, str], ...] = ()  # capture → why the generated code need not use it


@dataclass(frozen=True)
class Target:
    device: str
    max_batch: int
    max_seq_len: int  # 0: the model kind has no sequence target (an image classifier)
    kv_cache: str | None
    block_size: int
    loc: Loc
    # an image classifier's activations: tt-metal's L1-sharded layout, or DRAM-interleaved
    activations: str = "sharded"


@dataclass(frozen=True)
class ComputeConfigSpec:
    name: str
    math_fidelity: str
    math_approx_mode: bool
    fp32_dest_acc_en: bool
    packer_l1_acc: bool
    loc: Loc


@dataclass(frozen=True)
class PrecisionSpec:
    name: str
    weights: tuple[tuple[str, str], ...]  # weight group → dtype
    kv_cache: str
    activations: str
    logits: str  # LM-head output dtype
    fidelity: tuple[tuple[str, str], ...]  # fidelity key → compute config name
    loc: Loc
    mlp_gate: str = "bfloat8_b"  # the gated MLP product, W2's input (tt-transformers: bfloat8_b)


@dataclass(frozen=True)
class Override:
    layers: tuple[int, ...]
    weights: tuple[tuple[str, str], ...]
    fidelity: tuple[tuple[str, str], ...]
    loc: Loc


@dataclass(frozen=True)
class Thresholds:
    """The generated tests' accuracy targets; which apply depends on the model kind (KIND_TESTS)."""

    module_pcc: float
    top1: float
    model_prefill_pcc: float | None = None
    decode_pcc: float | None = None
    kv_cache_pcc: float | None = None
    decode_steps: int | None = None
    teacher_forcing_tokens: int | None = None
    top5: float | None = None
    layer_pcc: float | None = None
    model_pcc: float | None = None


# Per model kind: the activation dtypes its lowerings plan (a ViT's encoder runs in bfloat8_b as
# tt-metal's does; a decoder's residual stream stays bfloat16 or float32).
KIND_ACTIVATIONS = {
    "causal_lm": ("bfloat16", "float32"),
    "image_classifier": ("bfloat16", "float32", "bfloat8_b"),
}
# Per model kind: the target keys a spec gives, and the tests section's fields with their types.
KIND_TARGET = {
    "causal_lm": ("device", "max_batch", "max_seq_len", "kv_cache"),
    "image_classifier": ("device", "max_batch", "activations"),
}
KIND_TESTS = {
    "causal_lm": {"module_pcc": float, "model_prefill_pcc": float, "decode_pcc": float, "kv_cache_pcc": float,
                  "decode_steps": int, "teacher_forcing_tokens": int, "top1": float, "top5": float},
    # top1: the fraction of images whose top-1 class equals HF's
    "image_classifier": {"module_pcc": float, "layer_pcc": float, "model_pcc": float, "top1": float},
}  # fmt: skip


@dataclass(frozen=True)
class Spec:
    path: str
    sha256: str
    family: str
    target: Target
    precision: str
    precision_presets: tuple[PrecisionSpec, ...]
    compute_configs: tuple[ComputeConfigSpec, ...]
    patterns: tuple[PatternSpec, ...]
    rules: tuple[Rule, ...]
    overrides: tuple[Override, ...]
    tests: Thresholds
    model_kind: str = "causal_lm"  # how the rules' blocks compose (ttgen.blocks.MODEL_KINDS)

    def pattern(self, name: str) -> PatternSpec:
        return next(p for p in self.patterns if p.name == name)

    def precision_preset(self, name: str | None = None) -> PrecisionSpec:
        return next(p for p in self.precision_presets if p.name == (name or self.precision))

    def compute_config(self, name: str) -> ComputeConfigSpec:
        return next(c for c in self.compute_configs if c.name == name)
