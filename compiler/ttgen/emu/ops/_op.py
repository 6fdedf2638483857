"""Shared machinery of emulated ops: trace recording, output construction, common checks."""

from __future__ import annotations

import array
import functools
import math

import torch

from ttgen.devices.rules import check_static_cbs
from ttgen.emu.errors import fatal, require, rules
from ttgen.emu.tensor import Tensor, padded_shape_of, quantize_to, tile_pad
from ttgen.emu.types import CoreRange, DataType, Layout, MemoryConfig

__all__ = [
    "check_program_cbs", "device_op", "int64_tensor", "launch", "make_tensor", "on_device", "output_memory_config",
    "accepts", "overloaded", "run_kernels", "tensors_in",
]  # fmt: skip


def tensors_in(value) -> list[Tensor]:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in tensors_in(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in tensors_in(v)]
    return []


_kernel_slots: list = []  # per running device_op call (innermost last): the kernel it launched
_nested: list = []  # per running device_op call: whether it called another device op


def _spec(value):
    """What a program is compiled for: a tensor's shape, dtype, layout and memory config; any other
    argument by value (configs, dims, scalars)."""
    if isinstance(value, Tensor):
        return (
            "tensor",
            tuple(value.shape),
            value.dtype,
            value.layout,
            repr(value.memory_config()),
        )
    if isinstance(value, (list, tuple)):
        return tuple(_spec(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _spec(v)) for k, v in sorted(value.items()))
    return repr(value)


def _cache_program(device, name: str, args, kwargs) -> None:
    """The device's program cache gains an entry per distinct program: an op that runs one device
    operation (not a composite of others), keyed by its input specs and attributes."""
    if device.program_cache_enabled and not device.replaying:
        device.program_cache.add((name, _spec(args), _spec(kwargs)))


def device_op(fn):
    """Wrap an op that runs on the device: inputs must be alive and on one device; while a trace is
    being captured, the call is recorded so `execute_trace` can replay it into the same outputs —
    as the kernel it launched (see `launch`), else as the whole call."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        inputs = tensors_in(args) + tensors_in(kwargs)
        devices = {id(t.device()): t.device() for t in inputs if t.device() is not None}
        for t in inputs:
            t.check_alive()
        require(
            len(devices) <= 1,
            lambda: f"{fn.__name__}: all input tensors must be on the same device",
        )
        if _nested:
            _nested[-1] = True
        _kernel_slots.append(None)
        _nested.append(False)
        try:
            with torch.inference_mode():  # see run_kernels
                out = fn(*args, **kwargs)
        finally:
            kernel = _kernel_slots.pop()
            composite = _nested.pop()
        device = next(iter(devices.values()), None)
        if device is not None and not composite and out is not None and tensors_in(out):
            _cache_program(device, getattr(fn, "program", fn.__name__), args, kwargs)
        if device is not None and device.capturing is not None and not device.replaying:
            for t in inputs + tensors_in(out):
                t._traced = True
            if kernel is None:  # replayed as the whole call, on torch's threads
                kernel = (functools.partial(replay, fn, args, kwargs, out), True)
            device.capturing.append(kernel)
        return out

    wrapper.emulated = fn
    return wrapper


class _NoMatch(Exception):
    pass


def overloaded(name: str, *alternatives):
    """One function with several signatures, resolved as nanobind resolves an overloaded binding:
    the first alternative whose signature binds the call and whose annotated parameters accept
    the arguments' types runs. Each alternative is a plain function; `types` annotations are
    tuples of accepted classes (`{"grid": (CoreCoord, CoreRangeSet)}`) given with `accepts`.
    The conformance test compares each alternative with one overload of the real function."""
    import inspect

    sigs = [(alt, inspect.signature(alt), getattr(alt, "accepts", {})) for alt in alternatives]

    def dispatch(*args, **kwargs):
        for alt, sig, accepts in sigs:
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError:
                continue
            if all(
                k not in bound.arguments or _accepted(bound.arguments[k], types)
                for k, types in accepts.items()
            ):
                return alt(*args, **kwargs)
        shown = "; ".join(f"{name}{sig}" for _, sig, _ in sigs)
        raise TypeError(
            f"{name}(): incompatible function arguments. The supported signatures are: {shown}"
        )

    dispatch.__name__ = dispatch.__qualname__ = name
    dispatch.__doc__ = alternatives[0].__doc__
    dispatch.overloads = alternatives
    return dispatch


def _accepted(value, types) -> bool:
    if isinstance(types, (type, tuple)):
        return isinstance(value, types)
    return bool(types(value))  # a predicate: what the C++ parameter type converts from


def accepts(**types):
    """The argument types an overload alternative takes (see `overloaded`): classes, or a predicate
    for what a C++ parameter converts from (a std::array<uint32_t, 4> binds only 4 integers)."""

    def mark(fn):
        fn.accepts = types
        return fn

    return mark


def launch(kernel, *, parallel: bool = False) -> None:
    """Run an op's kernel: a callable that reads its input tensors' current storage and writes its
    (already reserved) outputs' storage. Everything that depends only on shapes, dtypes and configs
    — checks, output specs, placement — is settled before it, once; a captured trace replays just
    the kernels, as a device replays compiled programs. A kernel must read values only when called
    (trace inputs are refreshed between replays).

    Kernels run on one intra-op thread unless `parallel` (an op with enough arithmetic to gain from
    torch's thread pool, e.g. a big matmul): at decode sizes waking the pool costs more than it
    brings (measured: a tiny-preset decode step 5.7 ms single-threaded vs 6.8 ms on two threads)."""
    if parallel:
        kernel()
    else:
        run_kernels([(kernel, False)])
    if _kernel_slots:
        _kernel_slots[-1] = (kernel, parallel)


def run_kernels(kernels) -> None:
    """Run (kernel, parallel) pairs in order: parallel ones on torch's intra-op threads, the others
    on one (switching only where consecutive kernels differ; the caller's setting is restored).

    Device work runs in torch's inference mode (no autograd or version-counter bookkeeping: ~5%
    of a decode step). Device storage may thus hold inference tensors; the emulator only ever
    modifies storage in place inside device ops, and to_torch hands out a normal tensor."""
    threads = torch.get_num_threads()
    current = threads
    try:
        with torch.inference_mode():
            for kernel, parallel in kernels:
                want = threads if parallel else 1
                if want != current:
                    torch.set_num_threads(want)
                    current = want
                kernel()
    finally:
        if current != threads:
            torch.set_num_threads(threads)


def replay(fn, args, kwargs, recorded) -> None:
    """Re-run a recorded op and write its results into the tensors it produced at capture time."""
    out = fn(*args, **kwargs)
    for old, new in zip(tensors_in(recorded), tensors_in(out), strict=True):
        if old is not new:
            old._data = new._data


def on_device(tensor: Tensor, what: str = "input") -> None:
    require(
        tensor.device() is not None,
        lambda: f"Operands to the op need to be on device ({what} is on host)",
    )


def reserve_output(logical_shape, dtype: DataType, layout: Layout, device,
                   memory_config: MemoryConfig) -> Tensor:  # fmt: skip
    """Allocate an op's output buffer before computing it, as a device does before dispatch: a
    placement or out-of-memory error surfaces before any value is computed. Fill it with
    make_tensor(..., out=...)."""
    if dtype.is_block_float:
        require(
            layout == Layout.TILE,
            lambda: f"Tile layout is required for tensor of type {dtype.name}",
        )
    return Tensor._make(torch.empty(0), dtype, layout, tuple(logical_shape), device=device,
                  memory_config=memory_config)  # fmt: skip


def make_tensor(values: torch.Tensor, dtype: DataType, layout: Layout, *, device=None,
                memory_config: MemoryConfig | None = None, pad_value: float = 0.0,
                col_tilize: bool = False, out: Tensor | None = None,
                source: DataType | None = None) -> Tensor:  # fmt: skip
    """A tensor holding `values` (logical shape) as `dtype` in `layout`, allocated on `device`
    (or written into `out`, a buffer from reserve_output).

    `source`: the dtype `values` were read from, for ops that only move data. Equal to a non-block
    `dtype`, the values are already exactly representable and are stored as they are; block floats
    are always repacked (moving elements changes their exponent groups)."""
    logical = tuple(values.shape)
    if dtype.is_block_float:
        require(
            layout == Layout.TILE,
            lambda: f"Tile layout is required for tensor of type {dtype.name}",
        )
    if layout != Layout.TILE:
        data = values
    elif len(logical) >= 2 and logical[-1] % 32 == 0 and logical[-2] % 32 == 0:
        data = values if values.is_floating_point() else values.to(torch.int64)  # tile-aligned
    else:
        data = tile_pad(values if values.is_floating_point() else values.to(torch.int64), pad_value)
        data = data.reshape(padded_shape_of(logical, layout))
    if source != dtype or dtype.is_block_float or col_tilize or pad_value != 0.0:
        data = quantize_to(data, dtype, col_tilize=col_tilize)
    if out is not None:
        require(
            tuple(out.shape) == logical,
            lambda: f"output shape {logical} != reserved {tuple(out.shape)}",
        )
        out._data = data
        return out
    return Tensor._make(data, dtype, layout, logical, device=device, memory_config=memory_config)


def output_memory_config(memory_config: MemoryConfig | None, default: MemoryConfig) -> MemoryConfig:
    """An op's output memory config: the one given, else `default`. A sharded config without a shard
    spec must be completed by the op itself."""
    mc = memory_config if memory_config is not None else default
    if mc.is_sharded() and mc.shard_spec is None:
        raise fatal(f"{mc.memory_layout.name} output needs a shard spec that this op cannot infer")
    return mc


def positions(values, tensor: Tensor | None, batch: int, what: str) -> list[int]:
    """Per-user positions from an int32 device tensor (preferred) or a Python list."""
    if tensor is not None:
        on_device(tensor, what)
        require(tensor.dtype == DataType.INT32, lambda: f"{what} must be INT32")
        pos = tensor.values().reshape(-1).tolist()
    else:
        pos = [int(p) for p in values]
    require(len(pos) >= batch, lambda: f"{what}: {len(pos)} positions for {batch} users")
    return pos[:batch]


def int64_tensor(values: list[int]) -> torch.Tensor:
    """A small int64 tensor from a Python list (index vectors of per-user ops; several times faster
    than torch.tensor, which infers the dtype element by element)."""
    return (
        torch.frombuffer(array.array("q", values), dtype=torch.int64)
        if values
        else torch.zeros(0, dtype=torch.int64)
    )


def check_program_cbs(device, total: int, cores: CoreRange) -> None:
    """A program's static circular buffers (`total` bytes per core on `cores`) must end within L1
    and below the lowest live L1 buffer, as when the device places them."""
    profile, a, b = device.profile, cores.start, cores.end
    with rules():
        check_static_cbs(total, l1_bank_size=profile.l1_bank_size, worker_l1_size=profile.worker_l1_size,
                         cores=f"[{a.x}-{a.y} - {b.x}-{b.y}]", l1_buffers_low=device.l1_buffers_low())  # fmt: skip


def check_tile(tensor: Tensor, what: str) -> None:
    require(tensor.layout == Layout.TILE, lambda: f"{what} must be tilized (TILE layout)")


def flatten_rows(values: torch.Tensor) -> torch.Tensor:
    return values.reshape(math.prod(values.shape[:-1]), values.shape[-1])
