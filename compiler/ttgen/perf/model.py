"""The analytic cost model: per planned op, time = max(DRAM bytes / achievable bandwidth,
FLOPs / fidelity-limited peak) + a per-op cost (host dispatch when eager, kernel launch inside a
replayed trace). One parameter set per device profile (`perf:` in devices/*.yaml).

Peak FLOP/s = cores x 4096 FLOP/cycle x clock / fidelity passes; matmuls with fewer than 8
activation rows run at rows/8 of it. L1-resident operands cost no DRAM traffic (the planner counts
only DRAM bytes). Decode attention reads the KV cache up to the context length."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ttgen.devices import DeviceProfile
from ttgen.plan.types import EmitPlan, OpPlan, tensor_bytes

__all__ = ["ForwardReport", "GroupCost", "PerfReport", "predict", "predict_forward"]

_PASSES = {"LoFi": 1, "HiFi2": 2, "HiFi3": 3, "HiFi4": 4}
_MATMULS = {"ttnn.linear", "ttnn.matmul"}
_SDPA_DECODE = {
    "ttnn.transformer.scaled_dot_product_attention_decode",
    "ttnn.transformer.paged_scaled_dot_product_attention_decode",
}


@dataclass(frozen=True)
class GroupCost:
    group: str  # module.op
    count: int  # op instances (layers)
    time_s: float
    dram_bytes: int
    flops: int
    bound: str  # memory | compute | overhead


@dataclass(frozen=True)
class PerfReport:
    device: str
    batch: int
    context: int
    prefill_len: int
    prefill: tuple[GroupCost, ...]
    decode: tuple[GroupCost, ...]
    ttft_s: float
    decode_step_s: float
    roofline_s: float  # weight + KV bytes per decode step at peak bandwidth

    @property
    def tokens_per_s_per_user(self) -> float:
        return 1.0 / self.decode_step_s

    @property
    def roofline_fraction(self) -> float:
        return self.roofline_s / self.decode_step_s


def _cores(op: OpPlan, device: DeviceProfile) -> int:
    if op.program is not None and op.program.grid is not None:
        return op.program.grid[0] * op.program.grid[1]
    if op.inputs and op.inputs[0].memory.sharded and op.inputs[0].memory.buffer == "L1":
        return op.inputs[0].memory.num_cores
    return device.num_compute_cores


def _kv_read_bytes(plan: EmitPlan, context: int) -> int:
    f = plan.facts
    return 2 * tensor_bytes(
        (plan.max_batch, f.n_kv_heads, context, f.head_dim), plan.kv_cache.dtype
    )


def op_cost(
    op: OpPlan, plan: EmitPlan, device: DeviceProfile, *, traced: bool, rows: int, context: int
) -> tuple[float, int, int, str]:
    """(seconds, DRAM bytes, FLOPs, bound) of one op instance."""
    p = device.perf
    dram, flops = op.dram_bytes, op.flops
    if op.ttnn in _SDPA_DECODE:
        f = plan.facts
        dram = _kv_read_bytes(plan, context) + 2 * plan.max_batch * f.n_heads * f.head_dim * 2
        flops = 4 * plan.max_batch * f.n_heads * f.head_dim * context
    mem_s = dram / (device.dram_bandwidth_gbs * 1e9 * p.dram_efficiency)
    comp_s = 0.0
    if flops:
        passes = _PASSES[op.compute.math_fidelity] if op.compute else 1
        peak = _cores(op, device) * 4096 * device.clock_ghz * 1e9 / passes * p.compute_efficiency
        if op.ttnn in _MATMULS:
            peak *= min(1.0, rows / 8)
        comp_s = flops / peak
    overhead = (p.traced_op_us if traced else p.dispatch_op_us) * 1e-6
    bound = "memory" if mem_s >= comp_s else "compute"
    if overhead > max(mem_s, comp_s):
        bound = "overhead"
    return max(mem_s, comp_s) + overhead, dram, flops, bound


def _groups(
    plan: EmitPlan,
    device: DeviceProfile,
    mode: str,
    *,
    seq: int | None,
    rows: int,
    context: int,
    traced: bool | None = None,
):
    groups: OrderedDict[str, list] = OrderedDict()
    for module in plan.modules:
        n = len(module.instances)
        for op in module.ops_for(mode):
            if mode == "prefill" and op.seq_len not in (None, seq):
                continue
            t, dram, flops, bound = op_cost(
                op,
                plan,
                device,
                traced=mode == "decode" if traced is None else traced,
                rows=rows,
                context=context,
            )
            key = f"{module.template}.{op.name}"
            g = groups.setdefault(key, [0, 0.0, 0, 0, {}])
            g[0] += n
            g[1] += t * n
            g[2] += dram * n
            g[3] += flops * n
            g[4][bound] = g[4].get(bound, 0.0) + t * n
    return tuple(
        GroupCost(k, c, t, d, f, max(b, key=b.get)) for k, (c, t, d, f, b) in groups.items()
    )


def predict(plan: EmitPlan, device: DeviceProfile, *, batch: int | None = None, context: int = 128,
            prefill_len: int = 128) -> PerfReport:  # fmt: skip
    """Decode `batch` users (default: the plan's) at `context` tokens; prefill `prefill_len` tokens
    (padded up to the next planned length)."""
    rows = batch or plan.max_batch
    seq = next((s for s in plan.prefill_seq_lens if s >= prefill_len), max(plan.prefill_seq_lens))
    prefill = _groups(plan, device, "prefill", seq=seq, rows=seq, context=context)
    decode = _groups(plan, device, "decode", seq=None, rows=rows, context=context)
    weights = sum(
        tensor_bytes(op.inputs[1].shape, op.inputs[1].dtype, op.inputs[1].layout) * len(m.instances)
        for m in plan.modules
        for op in m.ops_for("decode")
        if op.ttnn in _MATMULS and op.weight
    )
    roofline = (weights + plan.facts.n_layers * _kv_read_bytes(plan, context)) / (
        device.dram_bandwidth_gbs * 1e9
    )
    return PerfReport(device.name, rows, context, seq, prefill, decode, sum(g.time_s for g in prefill),
                      sum(g.time_s for g in decode), roofline)  # fmt: skip


@dataclass(frozen=True)
class ForwardReport:
    """An image classifier's batch forward: traced (replayed, inputs on the second command queue)
    and eager."""

    device: str
    batch: int
    traced: tuple[GroupCost, ...]
    traced_s: float
    eager_s: float

    @property
    def images_per_s(self) -> float:
        return self.batch / self.traced_s

    @property
    def eager_images_per_s(self) -> float:
        return self.batch / self.eager_s


def predict_forward(plan: EmitPlan, device: DeviceProfile) -> ForwardReport:
    """One forward of the plan's batch of images (matmul rows: the batch's tokens)."""
    rows = plan.max_batch * plan.facts.tokens
    traced = _groups(plan, device, "forward", seq=None, rows=rows, context=0, traced=True)
    eager = _groups(plan, device, "forward", seq=None, rows=rows, context=0, traced=False)
    return ForwardReport(device.name, plan.max_batch, traced, sum(g.time_s for g in traced),
                         sum(g.time_s for g in eager))  # fmt: skip
