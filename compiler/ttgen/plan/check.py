"""Validate a plan with the TTNN rules (ttgen.devices.rules, shared with the emulator) and the
device's L1 and DRAM budgets. Every failure names the module, mode, op and numbers."""

from __future__ import annotations

import math

from ttgen.devices import DeviceProfile
from ttgen.devices.rules import (
    MatmulShapes,
    RuleViolation,
    check_decode_heads,
    check_matmul_program_config,
    check_sdpa_chunks,
    check_shard,
    check_sharded_norm,
    dest_tiles,
)
from ttgen.plan.facts import PlanError
from ttgen.plan.types import TILE, EmitPlan, MemCfg, OpPlan, TensorPlan

__all__ = ["validate_plan"]

GB = 1e9


def _pad(n: int) -> int:
    return -(-n // TILE) * TILE


def _check_tensor(t: TensorPlan, device: DeviceProfile) -> None:
    if not t.memory.sharded:
        return
    shape = t.shape if len(t.shape) > 1 else (1, *t.shape)
    tile = t.layout == "TILE"
    height = math.prod(shape[:-2]) * (_pad(shape[-2]) if tile else shape[-2])
    width = _pad(shape[-1]) if tile else shape[-1]
    _check_mem(t.memory, height, width, tile, device)


def _check_mem(mem: MemCfg, height: int, width: int, tile: bool, device: DeviceProfile) -> None:
    x0, y0, x1, y1 = mem.bbox
    check_shard(
        memory_layout=mem.layout, buffer_type=mem.buffer, height=height, width=width, shard=mem.shard,
        tile_layout=tile, grid_end=(x1, y1), grid_size=(x1 - x0 + 1, y1 - y0 + 1), num_cores=mem.num_cores,
        row_major=mem.orientation == "ROW_MAJOR", compute_grid=device.compute_grid, dram_banks=device.dram_banks,
    )  # fmt: skip


def _check_op(op: OpPlan, device: DeviceProfile, plan: EmitPlan) -> None:
    for t in (*op.inputs, op.output):
        _check_tensor(t, device)
    pc = op.program
    if op.ttnn in ("ttnn.linear", "ttnn.matmul") and pc is not None:
        a, b = op.inputs[0], op.inputs[1]
        # each batch entry's rows are tile-padded on their own ([B, 197, K] is B x 7 tile rows)
        rows, batch = (op.m_chunk, 1) if op.m_chunk else (a.shape[-2], math.prod(a.shape[:-2]))
        mem = a.memory
        shapes = MatmulShapes(
            mt=_pad(rows) // TILE, kt=_pad(a.shape[-1]) // TILE, nt=_pad(b.shape[-1]) // TILE, batch=batch,
            in0_shard_kt=mem.shard[1] // TILE if mem.layout == "WIDTH_SHARDED" and mem.buffer == "L1" else None,
            in0_cores=mem.num_cores if mem.sharded else None,
        )  # fmt: skip
        dest = dest_tiles(bool(op.compute and op.compute.fp32_dest_acc_en))
        check_matmul_program_config(
            pc.kind, pc, shapes, dest=dest, compute_grid=device.compute_grid, grid=pc.grid
        )
    elif pc is not None and pc.kind == "sdpa":
        check_sdpa_chunks(
            pc.q_chunk_size,
            pc.k_chunk_size,
            op.seq_len,
            grid=pc.grid,
            compute_grid=device.compute_grid,
        )
    elif pc is not None and pc.kind == "norm_sharded":
        _, _, x1, y1 = op.inputs[0].memory.bbox
        check_sharded_norm(block_w=pc.block_w, block_h=pc.block_h, subblock_w=pc.subblock_w,
                           shard=op.inputs[0].memory.shard, grid=pc.grid, compute_grid=device.compute_grid,
                           shard_box=(x1 + 1, y1 + 1))  # fmt: skip
    if op.ttnn == "ttnn.concat" and len({(t.dtype, t.layout) for t in op.inputs}) > 1:
        raise RuleViolation(
            f"concat: all tensors must share dtype and layout, got {[(t.dtype, t.layout) for t in op.inputs]}"
        )
    if op.ttnn == "ttnn.experimental.nlp_create_qkv_heads_decode":
        check_decode_heads(batch=plan.max_batch, head_dim=plan.facts.head_dim)
    if op.l1_per_core > device.l1_bank_size:
        raise RuleViolation(
            f"L1: needs {op.l1_per_core:,} B on its busiest core (circular buffers + L1 operands), "
            f"the core has {device.l1_bank_size:,} B"
        )


def validate_plan(plan: EmitPlan, device: DeviceProfile) -> None:
    kv = plan.kv_cache.bytes_total if plan.kv_cache else 0
    need = plan.dram_weight_bytes + kv
    if need > plan.dram_capacity_bytes:
        cache = (f" + KV cache {kv / GB:.2f} GB (batch {plan.max_batch} x {plan.max_seq_len} tokens, "
                 f"{plan.kv_cache.dtype})" if plan.kv_cache else "")  # fmt: skip
        raise PlanError(
            f"DRAM on {device.name}: weights {plan.dram_weight_bytes / GB:.2f} GB{cache} = {need / GB:.2f} GB "
            f"> {plan.dram_capacity_bytes / GB:.2f} GB"
        )
    for module in plan.modules:
        for w in module.weights:
            if w.memory.sharded:
                try:
                    _check_mem(
                        w.memory, _pad(w.shape[-2]), _pad(w.shape[-1]), w.layout == "TILE", device
                    )
                except RuleViolation as exc:
                    raise PlanError(
                        f"{module.rule}: weight {w.name} {list(w.shape)}: {exc}"
                    ) from None
        for mode, ops in module.ops:
            for op in ops:
                try:
                    _check_op(op, device, plan)
                except RuleViolation as exc:
                    seq = f" (seq_len {op.seq_len})" if op.seq_len else ""
                    raise PlanError(
                        f"{mode}{seq} {module.rule} op {op.name} ({op.ttnn}): {exc}"
                    ) from None
