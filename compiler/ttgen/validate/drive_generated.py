"""Drive an emitted package on whichever `ttnn` this interpreter imports, recording every ttnn call
that returns device tensors: the call site, the op and each output's shape, dtype, layout and memory
config. With --l1 (real ttnn only) each compute op also runs inside a NO_DISPATCH graph capture
and its real peak L1 per core is recorded.

    python drive_generated.py PACKAGE_DIR WEIGHTS.json OUT.json [--emu] [--l1]
        [--prefill 128,1024] [--decode-steps 3] [--trace]

The same file runs under the lane's Python 3.12 on the real ttnn 0.81.1 (mock device) and here on
the emulator (--emu), so both sides execute identical generated code. WEIGHTS.json maps HF
parameter names to shapes; the values are zeros (a mock device computes nothing, and only
validity and specs are compared). Stdlib, torch and ttnn only.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import sys
import time
from pathlib import Path

# Host-side calls: recorded when they return device tensors, never measured for L1.
HOST_OPS = {
    "from_torch", "as_tensor", "to_torch", "to_device", "from_device", "copy_host_to_device_tensor",
    "deallocate", "open_device", "close_device", "synchronize_device", "record_event",
    "wait_for_event", "begin_trace_capture", "end_trace_capture", "execute_trace", "release_trace",
}  # fmt: skip


def _name(value) -> str:
    return getattr(value, "name", None) or str(value).rsplit(".", 1)[-1]


def tensor_spec(t) -> dict:
    """A backend-neutral description of a tensor's spec."""
    spec = {
        "shape": [int(s) for s in t.shape],
        "dtype": _name(t.dtype),
        "layout": _name(t.layout),
    }
    try:
        mc = t.memory_config()
    except Exception:  # noqa: BLE001 - host tensors have no memory config
        return spec
    spec["memory"] = _name(mc.memory_layout)
    spec["buffer"] = _name(mc.buffer_type)
    shard = mc.shard_spec
    if shard is not None:
        spec["shard"] = [int(s) for s in shard.shape]
        spec["grid"] = [
            [r.start.x, r.start.y, r.end.x, r.end.y] for r in shard.grid.ranges()
        ]  # fmt: skip
        spec["orientation"] = _name(shard.orientation)
    return spec


def _device_tensors(out) -> list:
    items = out if isinstance(out, (list, tuple)) else [out]
    found = []
    for t in items:
        if hasattr(t, "memory_config") and hasattr(t, "layout"):
            try:
                on_device = "DEVICE" in _name(t.storage_type())
            except Exception:  # noqa: BLE001
                on_device = False
            if on_device:
                found.append(t)
    return found


class Recorder:
    def __init__(self, ttnn, measure_l1: bool):
        self.ttnn = ttnn
        self.measure_l1 = measure_l1
        self.records: list[dict] = []
        self.phase = "setup"
        self.depth = 0
        self.tracing = False  # inside a Metal trace capture: no graph captures

    def install(self) -> None:
        for ns, prefix in ((self.ttnn, ""), (self.ttnn.experimental, "experimental."),
                           (self.ttnn.transformer, "transformer.")):  # fmt: skip
            for name in dir(ns):
                fn = getattr(ns, name)
                if name.startswith("_") or inspect.isclass(fn) or inspect.ismodule(fn):
                    continue
                if not callable(fn) or type(fn).__name__ in ("nb_type", "EnumMeta", "EnumType"):
                    continue
                setattr(ns, name, self._wrap(prefix + name, name, fn))

    def _wrap(self, qualified: str, short: str, fn):
        ttnn = self.ttnn

        def wrapper(*args, **kwargs):
            if self.depth:  # a ttnn call made by a Python-level ttnn op: not the generated code's
                return fn(*args, **kwargs)
            caller = sys._getframe(1)
            site = f"{Path(caller.f_code.co_filename).stem}.{caller.f_code.co_name}"
            if short == "begin_trace_capture":
                self.tracing = True
            measure = self.measure_l1 and not self.tracing and short not in HOST_OPS
            self.depth += 1
            graph = None
            try:
                if measure:
                    ttnn.graph.begin_graph_capture(ttnn.graph.RunMode.NO_DISPATCH)
                try:
                    out = fn(*args, **kwargs)
                finally:
                    if measure:
                        graph = ttnn.graph.end_graph_capture()
            finally:
                self.depth -= 1
                if short == "end_trace_capture":
                    self.tracing = False
            outputs = _device_tensors(out)
            if outputs or short in ("execute_trace", "begin_trace_capture"):
                record = {"phase": self.phase, "site": site, "op": qualified,
                          "outputs": [tensor_spec(t) for t in outputs]}  # fmt: skip
                if graph is not None:
                    usage = ttnn.graph.extract_resource_usage_per_core(graph)
                    record["l1"] = {
                        "total": int(usage.peak_total),
                        "cb": int(usage.peak_cb) + int(usage.peak_dataflow_buffer),
                        "buffers": int(usage.peak_l1),
                    }
                self.records.append(record)
            return out

        return wrapper


def drive(package_dir: Path, weights: dict, *, emu: bool, measure_l1: bool, prefill: list[int],
          decode_steps: int, trace: bool) -> dict:  # fmt: skip
    if emu:
        from ttgen import emu as emulator

        emulator.install()
    import torch
    import ttnn

    recorder = Recorder(ttnn, measure_l1)
    recorder.install()
    sys.path.insert(0, str(package_dir.parent))
    name = package_dir.name
    if (package_dir / "runner.py").is_file():
        return _drive_classifier(ttnn, torch, recorder, package_dir, weights, trace)
    model_mod = importlib.import_module(f"{name}.model")
    generator_mod = importlib.import_module(f"{name}.generator")
    cfg = importlib.import_module(f"{name}.model_config")
    timings: dict[str, float] = {}
    error = None
    device = ttnn.open_device(device_id=0, trace_region_size=64 * 1024 * 1024, num_command_queues=2)
    try:
        t0 = time.perf_counter()
        recorder.phase = "load weights"
        state_dict = {k: torch.zeros(shape, dtype=torch.bfloat16) for k, shape in weights.items()}
        model = model_mod.Transformer(device, state_dict)
        del state_dict
        timings["load weights"] = time.perf_counter() - t0
        for seq_len in prefill:
            t0 = time.perf_counter()
            recorder.phase = f"prefill {seq_len}"
            tokens = torch.arange(seq_len, dtype=torch.int64) % cfg.VOCAB_SIZE
            model.forward_prefill(tokens, user_id=0)
            timings[recorder.phase] = time.perf_counter() - t0
        batch = cfg.MAX_BATCH
        for step in range(decode_steps):
            t0 = time.perf_counter()
            recorder.phase = f"decode step {step}"
            positions = torch.arange(batch, dtype=torch.int64) + 64 + step
            inputs = model.to_device(
                model.prepare_decode_inputs(torch.zeros(batch, dtype=torch.int64), positions)
            )
            logits = model.forward_decode(inputs)
            ttnn.to_torch(logits)
            ttnn.deallocate(logits)
            for t in inputs.values():
                ttnn.deallocate(t)
            timings[recorder.phase] = time.perf_counter() - t0
        if trace:
            # one command queue: events (the second queue's synchronisation) crash the mock device
            generator = generator_mod.Generator(model, use_trace=True, two_cqs=False)
            for step in range(3):
                t0 = time.perf_counter()
                recorder.phase = (
                    "decode trace capture" if step == 0 else f"decode trace replay {step}"
                )
                positions = torch.arange(batch, dtype=torch.int64) + 80 + step
                generator.decode(torch.zeros(batch, dtype=torch.int64), positions)
                timings[recorder.phase] = time.perf_counter() - t0
            generator.release()
    except Exception as exc:  # noqa: BLE001 - reported with the phase and op it happened in
        import traceback

        frames = [
            f for f in traceback.extract_tb(exc.__traceback__) if package_dir.name in f.filename
        ]
        where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
        error = {"phase": recorder.phase, "where": where, "message": str(exc)}
    finally:
        ttnn.close_device(device)
    return {"records": recorder.records, "timings": timings, "error": error}


def _drive_classifier(ttnn, torch, recorder, package_dir: Path, weights: dict, trace: bool) -> dict:
    """An image classifier: weights, one eager forward of a batch of blank images, then (trace) the
    forward captured and replayed."""
    name = package_dir.name
    model_mod = importlib.import_module(f"{name}.model")
    runner_mod = importlib.import_module(f"{name}.runner")
    cfg = importlib.import_module(f"{name}.model_config")
    timings: dict[str, float] = {}
    error = None
    device = ttnn.open_device(device_id=0, trace_region_size=64 * 1024 * 1024, num_command_queues=2)
    try:
        t0 = time.perf_counter()
        recorder.phase = "load weights"
        state_dict = {k: torch.zeros(shape, dtype=torch.bfloat16) for k, shape in weights.items()}
        model = model_mod.ImageClassifier(device, state_dict)
        del state_dict
        timings["load weights"] = time.perf_counter() - t0
        pixels = torch.zeros(cfg.MAX_BATCH, cfg.CHANNELS, cfg.IMAGE_SIZE, cfg.IMAGE_SIZE)
        t0 = time.perf_counter()
        recorder.phase = "forward"
        model(pixels)
        timings["forward"] = time.perf_counter() - t0
        if trace:
            # one command queue: events (the second queue's synchronisation) crash the mock device
            runner = runner_mod.Runner(model, use_trace=True, two_cqs=False)
            for step in range(2):
                t0 = time.perf_counter()
                recorder.phase = "forward trace capture" if step == 0 else "forward trace replay"
                runner.forward(pixels)
                timings[recorder.phase] = time.perf_counter() - t0
            runner.release()
    except Exception as exc:  # noqa: BLE001 - reported with the phase and op it happened in
        import traceback

        frames = [
            f for f in traceback.extract_tb(exc.__traceback__) if package_dir.name in f.filename
        ]
        where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
        error = {"phase": recorder.phase, "where": where, "message": str(exc)}
    finally:
        ttnn.close_device(device)
    return {"records": recorder.records, "timings": timings, "error": error}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("package", type=Path)
    p.add_argument("weights", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--emu", action="store_true")
    p.add_argument("--l1", action="store_true")
    p.add_argument("--prefill", default="128,1024")
    p.add_argument("--decode-steps", type=int, default=3)
    p.add_argument("--trace", action="store_true")
    args = p.parse_args(argv)
    weights = {k: tuple(v) for k, v in json.loads(args.weights.read_text()).items()}
    result = drive(args.package.resolve(), weights, emu=args.emu, measure_l1=args.l1,
                   prefill=[int(s) for s in args.prefill.split(",") if s], decode_steps=args.decode_steps,
                   trace=args.trace)  # fmt: skip
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
