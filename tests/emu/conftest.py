import pytest

from ttgen import emu as ttnn


@pytest.fixture
def device(monkeypatch):
    monkeypatch.delenv("TTGEN_EMU_DEVICE", raising=False)
    dev = ttnn.open_device(device_id=0, trace_region_size=10_000_000)
    yield dev
    if dev.capturing is not None:
        dev.capturing = None
    ttnn.close_device(dev)


def pcc(a, b) -> float:
    import torch

    a, b = a.double().flatten(), b.double().flatten()
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])
