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
