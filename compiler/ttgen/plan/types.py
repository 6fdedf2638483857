"""The EmitPlan: every dtype, memory config, program config and compute-kernel config of the
generated code, fixed per module and mode. Frozen, JSON-serialisable, the emitter's only input."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SINGLE_DEVICE", "Call", "Const", "Lit", "Placement", "Ref", "Signature",
    "ComputeCfg", "EmitPlan", "KVCachePlan", "MemCfg", "ModelFacts", "ModelLayout", "ModulePlan", "OpPlan", "ProgCfg",
    "TensorPlan", "WeightPlan", "decode_rows",
]  # fmt: skip

TILE = 32
TILE_BYTES = {
    "bfloat16": 2048,
    "float32": 4096,
    "bfloat8_b": 1088,
    "bfloat4_b": 576,
    "uint32": 4096,
    "int32": 4096,
}


def tensor_bytes(shape: tuple[int, ...], dtype: str, layout: str = "TILE") -> int:
    """Bytes a tensor occupies: whole tiles in TILE layout, elements in ROW_MAJOR."""
    if layout == "TILE":
        return tiles(shape) * TILE_BYTES[dtype]
    n = 1
    for d in shape:
        n *= d
    return n * TILE_BYTES[dtype] // 1024


def tiles(shape: tuple[int, ...]) -> int:
    """Tiles of a TILE-layout tensor (last two dims padded to 32)."""
    if len(shape) == 1:
        shape = (1, *shape)
    lead = 1
    for d in shape[:-2]:
        lead *= d
    return lead * -(-shape[-2] // TILE) * -(-shape[-1] // TILE)


@dataclass(frozen=True)
class MemCfg:
    layout: str  # INTERLEAVED | HEIGHT_SHARDED | WIDTH_SHARDED | BLOCK_SHARDED
    buffer: str  # DRAM | L1
    ranges: tuple[tuple[int, int, int, int], ...] = ()  # core ranges (x0, y0, x1, y1), inclusive
    shard: tuple[int, int] | None = None
    orientation: str = "ROW_MAJOR"

    @property
    def sharded(self) -> bool:
        return self.layout != "INTERLEAVED"

    @property
    def num_cores(self) -> int:
        return sum((x1 - x0 + 1) * (y1 - y0 + 1) for x0, y0, x1, y1 in self.ranges)

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        return (min(r[0] for r in self.ranges), min(r[1] for r in self.ranges),
                max(r[2] for r in self.ranges), max(r[3] for r in self.ranges))  # fmt: skip

    def describe(self) -> str:
        if not self.sharded:
            return f"{self.buffer} interleaved"
        kind = self.layout.split("_")[0].lower()
        return f"{self.buffer} {kind} [{self.shard[0]}, {self.shard[1]}] x{self.num_cores}"


@dataclass(frozen=True)
class ProgCfg:
    kind: str  # 2d | 1d | dram_sharded | sdpa | norm_sharded
    grid: tuple[int, int] | None  # compute_with_storage_grid_size (x, y)
    fields: tuple[tuple[str, Any], ...]

    def __getattr__(self, name: str):
        # program-config fields read like the ttnn objects' attributes (the shared rules rely on it)
        for key, value in object.__getattribute__(self, "fields"):
            if key == name:
                return value
        raise AttributeError(name)

    def describe(self) -> str:
        keys = {"in0_block_w": "k", "per_core_M": "M", "per_core_N": "N", "out_subblock_w": "sw",
                "q_chunk_size": "q", "k_chunk_size": "k", "block_w": "bw", "subblock_w": "sw"}  # fmt: skip
        body = " ".join(f"{keys[k]}{v}" for k, v in self.fields if k in keys)
        grid = f" {self.grid[0]}x{self.grid[1]}" if self.grid else ""
        return f"{self.kind}{grid} {body}".strip()


@dataclass(frozen=True)
class ComputeCfg:
    name: str
    math_fidelity: str
    math_approx_mode: bool
    fp32_dest_acc_en: bool
    packer_l1_acc: bool


@dataclass(frozen=True)
class Placement:
    """Where a value lives on the target: one device today; a mesh placement (replicated, or
    sharded on a tensor dim over a mesh axis) extends this record."""

    kind: str = "device"  # device | replicated | sharded
    mesh_axis: int | None = None
    tensor_dim: int | None = None


SINGLE_DEVICE = Placement()


@dataclass(frozen=True)
class TensorPlan:
    shape: tuple[int, ...]
    dtype: str
    layout: str  # TILE | ROW_MAJOR
    memory: MemCfg
    placement: Placement = SINGLE_DEVICE


# ---------------------------------------------------------------- the program IR (ttgen.plan.program)


@dataclass(frozen=True)
class Ref:
    """A value: a program parameter, an earlier call's output, or module state (`self.w1`)."""

    name: str


@dataclass(frozen=True)
class Const:
    """A named constant of the generated module (or of model_config.py when `shared`)."""

    name: str  # UPPER_SNAKE, built by the lowering from fixed parts
    value: MemCfg | ProgCfg | ComputeCfg | tuple | float | int | str
    shared: bool = False  # defined once in model_config.py (compute configs, model dimensions)


@dataclass(frozen=True)
class Lit:
    """A Python expression from a closed set (ttnn enums, numbers, `seq_len`, model_config names)."""

    code: str
    uses: tuple[str, ...] = ()  # the model_config names it reads (the module imports them)


Arg = Ref | Const | Lit  # or a tuple of Refs: a list of tensors (ttnn.concat)


@dataclass(frozen=True)
class Call:
    fn: str  # "ttnn.linear", "ttnn.experimental.nlp_create_qkv_heads_decode", "self.mlp.forward_decode"
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    outs: tuple[str, ...] = ()  # names bound, in order (several for a tuple result); () in place
    view: bool = False  # the single output shares its input's buffer (a reshape view)
    guard: str | None = None  # a prefill table constant: the call runs for the seq_lens it keys
    frees: tuple[str, ...] = ()  # values deallocated right after the call (their last use)

    @property
    def is_ttnn(self) -> bool:
        return self.fn.startswith("ttnn.")

    def refs(self) -> tuple[str, ...]:
        """The values the call reads, in argument order (a list argument is a tuple of Refs)."""
        out = []
        for a in (*self.args, *(v for _, v in self.kwargs)):
            out += [r.name for r in (a if isinstance(a, tuple) else (a,)) if isinstance(r, Ref)]
        return tuple(out)


@dataclass(frozen=True)
class Signature:
    """A program's interface: its parameters (borrowed unless consumed) and what it returns."""

    method: str  # forward_decode | forward_prefill | ...
    params: tuple[str, ...]
    returns: tuple[str, ...]
    consumes: tuple[str, ...] = ()  # parameters the program owns and frees (the residual stream)


@dataclass(frozen=True)
class OpPlan:
    name: str
    ttnn: str
    inputs: tuple[TensorPlan, ...]
    output: TensorPlan
    program: ProgCfg | None = None
    compute: ComputeCfg | None = None
    weight: str | None = None
    l1_per_core: int = 0  # circular buffers + L1 operands on the busiest core (estimate)
    dram_bytes: int = 0  # bytes read from and written to DRAM
    flops: int = 0
    seq_len: int | None = None  # prefill: the sequence length this variant is for
    m_chunk: int | None = None  # prefill matmuls: rows per chunk when the sequence is split
    extra_outputs: tuple[TensorPlan, ...] = ()  # the further results of a tuple-returning op
    call: Call | None = None  # what the generated code runs (ttgen.plan.program)

    @property
    def outputs(self) -> tuple[TensorPlan, ...]:
        return (self.output, *self.extra_outputs)


@dataclass(frozen=True)
class WeightPlan:
    name: str
    sources: tuple[str, ...]  # HF parameter names; `{layer}` for per-layer weights
    # how the HF tensors become the device tensor: a typed expression over the sources (see
    # ttgen.plan.weights), or ("computed", what) for a table the module builds itself
    transform: tuple
    shape: tuple[int, ...]  # device tensor shape
    dtype: str
    layout: str
    memory: MemCfg
    per_layer: bool
    dtype_overrides: tuple[tuple[int, str], ...] = ()  # (layer, dtype)

    def bytes_per_instance(self, dtype: str | None = None) -> int:
        return tensor_bytes(self.shape, dtype or self.dtype, self.layout)


@dataclass(frozen=True)
class ModulePlan:
    rule: str
    template: str
    instances: tuple[str, ...]  # HF module paths
    weights: tuple[WeightPlan, ...]
    ops: tuple[tuple[str, tuple[OpPlan, ...]], ...]  # mode → ops in execution order
    signatures: tuple[tuple[str, Signature], ...] = ()  # mode → the program's interface

    def ops_for(self, mode: str) -> tuple[OpPlan, ...]:
        """The TTNN ops of `mode` (a sub-module's call is counted in that module's own program)."""
        return tuple(op for op in self.program(mode) if op.ttnn.startswith("ttnn."))

    def program(self, mode: str) -> tuple[OpPlan, ...]:
        """Every call of `mode` in order, sub-module calls included (prefill: each length in turn)."""
        return dict(self.ops).get(mode, ())

    def signature(self, mode: str) -> Signature | None:
        return dict(self.signatures).get(mode)


@dataclass(frozen=True)
class ModelFacts:
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden_dim: int
    vocab_size: int
    norm_eps: float
    attn_scale: float
    rope_theta: float
    rope_scaling: tuple[tuple[str, Any], ...]
    max_position_embeddings: int
    qkv_bias: bool
    sliding_window: int | None
    tied_embeddings: bool
    qk_norm_eps: float | None = None  # an RMSNorm of q and k before RoPE, if any
    qk_norm_per_head: bool = True  # per head (Qwen3) or over the whole projections (OLMo 2)
    qk_norm_offset: float = 0.0  # the QK-norm scales by (offset + w): Gemma 3's 1, folded at load
    mlp_activation: str = "silu"  # the gated MLP's: silu (SwiGLU), gelu_tanh or gelu (GeGLU)
    norm_weight_offset: float = 0.0  # RMSNorm scales by (offset + w): Gemma's 1, folded at load
    # Granite's multipliers (1.0 elsewhere): embeddings x, each residual update x, logits /
    embedding_multiplier: float = 1.0
    residual_multiplier: float = 1.0
    logits_scaling: float = 1.0

    @property
    def qkv_size(self) -> int:
        return (self.n_heads + 2 * self.n_kv_heads) * self.head_dim


def decode_rows(max_batch: int) -> int:
    """Rows of every decode tensor on device: max_batch padded to a tile row (TTNN's decode ops work
    on 32 users; nlp_concat_heads_decode always returns 32 rows)."""
    return TILE * -(-max_batch // TILE)


@dataclass(frozen=True)
class KVCachePlan:
    kind: str  # static | paged
    dtype: str
    block_size: int
    max_batch: int
    max_seq_len: int
    shape: tuple[int, ...]  # per layer, per K or V
    bytes_total: int  # all layers, K and V


@dataclass(frozen=True)
class ModelLayout:
    """Where the blocks sit in the HF module tree (paths from the matches)."""

    embedding: str
    rotary_setup: str
    final_norm: str
    lm_head: str
    layers: tuple[str, ...]  # the decoder layers' module paths, in order
    layer_children: tuple[tuple[str, str], ...]  # role in a layer → sub-module name

    def child(self, role: str) -> str:
        return dict(self.layer_children)[role]


@dataclass(frozen=True)
class ClassifierModelFacts:
    """An encoder-only image classifier's dimensions (ViT), from its blocks' captures."""

    dim: int
    n_layers: int
    n_heads: int
    head_dim: int
    hidden_dim: int  # the MLP's width
    n_classes: int
    norm_eps: float
    attn_scale: float
    patch_size: int
    channels: int
    image_size: int
    tokens: int  # patches + the CLS token
    qkv_bias: bool


@dataclass(frozen=True)
class ClassifierLayout:
    """Where an image classifier's blocks sit in the HF module tree (paths from the matches)."""

    embeddings: str
    final_norm: str
    classifier: str
    layers: tuple[str, ...]  # the encoder layers' module paths, in order
    layer_children: tuple[tuple[str, str], ...]  # role in a layer → sub-module name

    def child(self, role: str) -> str:
        return dict(self.layer_children)[role]


@dataclass(frozen=True)
class EmitPlan:
    spec_path: str
    spec_sha256: str
    family: str
    source: str  # preset name or checkpoint folder
    checkpoint: (
        str | None
    )  # the checkpoint folder the plan was made from (its tests use its weights)
    hf_class: str
    config_class: str  # the transformers config class of hf_config (the generated tests build it)
    hf_config_json: str  # the HF config the code is generated for (sorted JSON: byte-stable)
    device: str
    arch: str
    compute_grid: tuple[int, int]
    dram_banks: int
    max_batch: int
    max_seq_len: int
    precision: str
    model_kind: str  # how the blocks compose (ttgen.blocks.MODEL_KINDS)
    layout: ModelLayout | ClassifierLayout
    facts: ModelFacts | ClassifierModelFacts
    modules: tuple[ModulePlan, ...]
    dram_weight_bytes: int
    dram_capacity_bytes: int
    tests: tuple[tuple[str, Any], ...]
    # a causal LM's: its planned prefill lengths, the decode residual stream's memory config
    # (model_config.py), its KV cache
    prefill_seq_lens: tuple[int, ...] = ()
    residual_memory: MemCfg | None = None
    kv_cache: KVCachePlan | None = None

    @property
    def modes(self) -> tuple[str, ...]:
        from ttgen.models.kinds import modes_of

        return modes_of(self.model_kind)

    def module(self, template: str) -> ModulePlan:
        return next(m for m in self.modules if m.template == template)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmitPlan:
        return _build(cls, data)


def _build(cls, data):
    """Rebuild nested frozen dataclasses from `asdict` output (tuples restored)."""
    import typing

    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        kwargs[f.name] = _value(hints[f.name], data[f.name])
    return cls(**kwargs)


def _value(hint, value):
    import typing

    if value is None:
        return None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        inner = [a for a in args if a is not type(None)]
        return _value(inner[0], value) if len(inner) == 1 else _guess(value)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_value(args[0], v) for v in value)
        return tuple(_value(a, v) for a, v in zip(args, value, strict=True))
    if hint is Any or hint is tuple:  # a bare tuple: nested data such as a weight transform
        return _guess(value)
    return value


def _guess(value):
    """A value typed `Any` or a union of records (call arguments, constants): the record is the
    dataclass whose field names are the dict's keys."""
    if isinstance(value, dict):
        by_keys = {frozenset(f.name for f in dataclasses.fields(c)): c
                   for c in (Ref, Const, Lit, MemCfg, ProgCfg, ComputeCfg, ModelLayout, ClassifierLayout,
                             ModelFacts, ClassifierModelFacts)}  # fmt: skip
        cls = by_keys.get(frozenset(value))
        if cls is not None:
            return _build(cls, value)
    if isinstance(value, list):
        return tuple(_guess(v) for v in value)
    return value
