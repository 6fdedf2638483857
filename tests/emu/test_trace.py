"""Metal trace capture and replay, command queues and events."""

import pytest
import torch

from ttgen import emu as ttnn


def _host(x, dtype=ttnn.bfloat16):
    return ttnn.from_torch(x, dtype=dtype, layout=ttnn.TILE_LAYOUT)


def test_replay_recomputes_from_persistent_inputs(device):
    w = torch.randn(64, 64)
    tw = ttnn.from_torch(
        w,
        dtype=ttnn.bfloat16,
        layout=ttnn.TILE_LAYOUT,
        device=device,
        memory_config=ttnn.DRAM_MEMORY_CONFIG,
    )
    x_dev = ttnn.to_device(_host(torch.zeros(1, 1, 32, 64)), device, ttnn.DRAM_MEMORY_CONFIG)
    kernel = ttnn.WormholeComputeKernelConfig(
        math_fidelity=ttnn.MathFidelity.HiFi4, fp32_dest_acc_en=True
    )

    def step(x):
        h = ttnn.linear(x, tw, compute_kernel_config=kernel)
        out = ttnn.add(h, x)
        ttnn.deallocate(h)
        return out

    tid = ttnn.begin_trace_capture(device, cq_id=0)
    out = step(x_dev)
    ttnn.end_trace_capture(device, tid, cq_id=0)
    for seed in range(3):
        x = torch.randn(1, 1, 32, 64, generator=torch.Generator().manual_seed(seed))
        ttnn.copy_host_to_device_tensor(_host(x), x_dev)
        ttnn.execute_trace(device, tid, cq_id=0, blocking=False)
        eager = step(ttnn.to_device(_host(x), device, ttnn.DRAM_MEMORY_CONFIG))
        assert torch.equal(ttnn.to_torch(out), ttnn.to_torch(eager))
    ttnn.release_trace(device, tid)
    with pytest.raises(RuntimeError, match="does not exist"):
        ttnn.execute_trace(device, tid)


def test_replay_does_not_allocate(device):
    x_dev = ttnn.to_device(_host(torch.randn(1, 1, 32, 64)), device, ttnn.DRAM_MEMORY_CONFIG)
    tid = ttnn.begin_trace_capture(device)
    out = ttnn.silu(x_dev)
    ttnn.end_trace_capture(device, tid)
    before = ttnn.memory_usage(device)
    for _ in range(3):
        ttnn.execute_trace(device, tid)
    assert ttnn.memory_usage(device) == before and out.is_allocated()


def test_plus_one_advances_on_every_replay(device):
    pos = ttnn.from_torch(
        torch.tensor([0, 5], dtype=torch.int32),
        device=device,
        memory_config=ttnn.DRAM_MEMORY_CONFIG,
    )
    tid = ttnn.begin_trace_capture(device)
    ttnn.plus_one(pos)
    ttnn.end_trace_capture(device, tid)
    for _ in range(3):
        ttnn.execute_trace(device, tid)
    assert ttnn.to_torch(pos).tolist() == [4, 9]  # once at capture, three replays


def test_host_io_during_capture_raises(device):
    x_dev = ttnn.to_device(_host(torch.randn(1, 1, 32, 64)), device, ttnn.DRAM_MEMORY_CONFIG)
    ttnn.begin_trace_capture(device)
    for call in (
        lambda: ttnn.to_torch(x_dev),
        lambda: ttnn.from_torch(
            torch.ones(32, 32), device=device, memory_config=ttnn.DRAM_MEMORY_CONFIG
        ),
        lambda: ttnn.to_device(_host(torch.ones(32, 32)), device),
        lambda: ttnn.copy_host_to_device_tensor(_host(torch.randn(1, 1, 32, 64)), x_dev),
        lambda: ttnn.record_event(device, 0),
    ):
        with pytest.raises(RuntimeError, match="trace"):
            call()


def test_capture_needs_trace_region():
    dev = ttnn.open_device(device_id=0)
    with pytest.raises(RuntimeError, match="trace_region_size"):
        ttnn.begin_trace_capture(dev)
    ttnn.close_device(dev)


def test_two_command_queues_and_events():
    dev = ttnn.open_device(device_id=0, num_command_queues=2, trace_region_size=1_000_000)
    x_dev = ttnn.to_device(_host(torch.zeros(1, 32)), dev, ttnn.DRAM_MEMORY_CONFIG)
    op_event = ttnn.record_event(dev, 0)
    ttnn.wait_for_event(1, op_event)
    ttnn.copy_host_to_device_tensor(_host(torch.ones(1, 32)), x_dev, cq_id=1)
    write_event = ttnn.record_event(dev, 1)
    ttnn.wait_for_event(0, write_event)
    assert ttnn.to_torch(x_dev).sum() == 32
    with pytest.raises(RuntimeError, match="command queue 2 does not exist"):
        ttnn.record_event(dev, 2)
    ttnn.close_device(dev)
    single = ttnn.open_device(device_id=0)
    with pytest.raises(RuntimeError, match="command queue 1 does not exist"):
        ttnn.record_event(single, 1)
    ttnn.close_device(single)


def test_replayed_kernels_read_their_inputs_at_replay(device):
    """A captured attention + MLP decode step, made of ops that replay as kernels (embedding,
    rms_norm, linear with either dest format and a bias, head split/concat, rotary, paged cache
    update, paged SDPA decode, fused-activation multiply, add, the static-cache update), replayed on
    refreshed tokens, positions and rotary tables equals the same step run eagerly on those inputs
    from the same cache contents: a kernel reads values when it runs, never ones seen at capture."""
    from tests.emu.test_attention_ops import _dev, _rope_tables, _trans_mat

    b, hq, hkv, d, vocab, blocks, bs = 32, 2, 1, 64, 64, 128, 32
    width, qkv_w = hq * d, (hq + 2 * hkv) * d
    g = torch.Generator().manual_seed(0)
    w = lambda *shape: torch.randn(*shape, generator=g) * 0.2  # noqa: E731
    table = _dev(w(vocab, width), device, layout=ttnn.ROW_MAJOR_LAYOUT)
    gamma = _dev(1 + w(1, 1, 1, width), device)
    wqkv, bqkv = _dev(w(width, qkv_w), device, ttnn.bfloat8_b), _dev(w(1, qkv_w), device)
    wo, w1 = _dev(w(width, width), device, ttnn.bfloat8_b), _dev(w(width, 2 * width), device)
    page_table = ttnn.from_torch(
        torch.randperm(blocks, generator=g).reshape(b, blocks // b).to(torch.int32),
        device=device, memory_config=ttnn.DRAM_MEMORY_CONFIG,
    )  # fmt: skip
    fp32_acc = ttnn.WormholeComputeKernelConfig(
        math_fidelity=ttnn.MathFidelity.HiFi2, fp32_dest_acc_en=True
    )
    bf16_acc = ttnn.WormholeComputeKernelConfig(
        math_fidelity=ttnn.MathFidelity.HiFi2, fp32_dest_acc_en=False
    )
    rot_mc = ttnn.create_sharded_memory_config((32, d), ttnn.num_cores_to_corerangeset(b, ttnn.CoreCoord(8, 8), True),
                                               ttnn.ShardStrategy.HEIGHT, use_height_and_width_as_shard_shape=True)  # fmt: skip
    trans = _dev(_trans_mat().repeat(b, 1)[None, None], device, mc=ttnn.create_sharded_memory_config(
        (32, 32), ttnn.num_cores_to_corerangeset(b, ttnn.CoreCoord(8, 8), True), ttnn.ShardStrategy.HEIGHT,
        use_height_and_width_as_shard_shape=True))  # fmt: skip

    def host_inputs(step):
        pos = torch.tensor([3, 40, -1, 70]).repeat(b // 4) + step  # every fourth user idle
        cos, sin, _ = _rope_tables(pos.clamp(min=0), d)
        return {
            "tokens": ttnn.from_torch(
                torch.randint(0, vocab, (1, b), generator=g), dtype=ttnn.uint32
            ),
            "pos": ttnn.from_torch(pos.to(torch.int32), dtype=ttnn.int32),
            "cos": ttnn.from_torch(
                cos[None, :, None], dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT
            ),
            "sin": ttnn.from_torch(
                sin[None, :, None], dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT
            ),
        }

    def to_dev(t, name):
        return ttnn.to_device(
            t, device, rot_mc if name in ("cos", "sin") else ttnn.DRAM_MEMORY_CONFIG
        )

    def step(x, kc, vc, static):
        emb = ttnn.embedding(x["tokens"], table, layout=ttnn.TILE_LAYOUT)  # [1, B, W]
        h = ttnn.rms_norm(ttnn.reshape(emb, [1, 1, b, width]), epsilon=1e-5, weight=gamma)
        qkv = ttnn.linear(
            h, wqkv, bias=bqkv, compute_kernel_config=fp32_acc, memory_config=ttnn.L1_MEMORY_CONFIG
        )
        q, k, v = ttnn.experimental.nlp_create_qkv_heads_decode(
            qkv, num_heads=hq, num_kv_heads=hkv, memory_config=ttnn.L1_HEIGHT_SHARDED_MEMORY_CONFIG
        )
        q, k = (ttnn.experimental.rotary_embedding_llama(t, x["cos"], x["sin"], trans, is_decode_mode=True)
                for t in (q, k))  # fmt: skip
        for cache, new in ((kc, k), (vc, v)):
            ttnn.experimental.paged_update_cache(
                cache, new, update_idxs_tensor=x["pos"], page_table=page_table
            )
        ttnn.update_cache(static, static_rows(v), 5)
        attn = ttnn.transformer.paged_scaled_dot_product_attention_decode(
            q, kc, vc, page_table, cur_pos_tensor=x["pos"], scale=d**-0.5
        )
        heads = ttnn.experimental.nlp_concat_heads_decode(
            ttnn.to_memory_config(attn, rot_mc), num_heads=hq
        )
        o = ttnn.add(ttnn.linear(heads, wo, compute_kernel_config=bf16_acc), h)
        gate_up = ttnn.linear(o, w1, compute_kernel_config=bf16_acc)
        return ttnn.multiply(gate_up, gate_up, input_tensor_a_activations=[ttnn.UnaryOpType.SILU],
                             dtype=ttnn.bfloat8_b)  # fmt: skip

    def static_rows(v):  # [1, B, Hkv, D] → [1, Hkv, B, D] rows for update_cache
        return ttnn.permute(ttnn.to_memory_config(v, ttnn.DRAM_MEMORY_CONFIG), [0, 2, 1, 3])

    def caches():
        return (_dev(w(blocks, hkv, bs, d), device, ttnn.bfloat8_b), _dev(w(blocks, hkv, bs, d), device, ttnn.bfloat8_b),
                _dev(w(b, hkv, 32, d), device))  # fmt: skip

    first = host_inputs(0)
    persistent = {name: to_dev(t, name) for name, t in first.items()}
    traced_caches = caches()
    tid = ttnn.begin_trace_capture(device)
    out = step(persistent, *traced_caches)
    ttnn.end_trace_capture(device, tid)
    for s in range(1, 4):
        fresh = host_inputs(s)
        before = [ttnn.clone(c) for c in traced_caches]  # the cache contents the replay starts from
        for name, t in fresh.items():
            ttnn.copy_host_to_device_tensor(t, persistent[name])
        ttnn.execute_trace(device, tid)
        eager = step({name: to_dev(t, name) for name, t in fresh.items()}, *before)
        assert torch.equal(ttnn.to_torch(out), ttnn.to_torch(eager))
        for replayed, direct in zip(traced_caches, before, strict=True):
            assert torch.equal(ttnn.to_torch(replayed), ttnn.to_torch(direct))
    ttnn.release_trace(device, tid)


def test_outputs_are_ordinary_torch_tensors_after_replay(device):
    """Device work runs in torch's inference mode; what reaches the user must not be an inference
    tensor (those refuse in-place updates and autograd outside inference mode)."""
    x = torch.randn(1, 1, 32, 64)
    x_dev = ttnn.to_device(_host(x), device, ttnn.DRAM_MEMORY_CONFIG)
    tid = ttnn.begin_trace_capture(device)
    out = ttnn.silu(x_dev)
    ttnn.end_trace_capture(device, tid)
    ttnn.execute_trace(device, tid)
    for tensor in (out, ttnn.silu(x_dev), ttnn.from_device(out)):
        values = ttnn.to_torch(tensor)
        assert not values.is_inference()
        values.add_(1.0)  # in place, outside inference mode
        (values * torch.ones_like(values, requires_grad=True)).sum().backward()
    ttnn.copy_host_to_device_tensor(_host(x + 1), x_dev)  # still writable from the host
    ttnn.execute_trace(device, tid)
    assert torch.equal(ttnn.to_torch(out), ttnn.to_torch(ttnn.silu(x_dev)))
