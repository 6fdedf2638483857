"""Metal trace capture/replay, command queues and events, functionally.

Capture records each device op's kernel (or, for an op without one, the call with its arguments
and outputs); replay re-runs them in order from the current contents of their inputs (persistent inputs refreshed with
`copy_host_to_device_tensor`) and writes the results into the captured output tensors, without
allocating. Host I/O during capture raises."""

from __future__ import annotations

from dataclasses import dataclass

from ttgen.emu.errors import require
from ttgen.emu.ops._op import run_kernels

__all__ = [
    "MeshEvent", "begin_trace_capture", "end_trace_capture", "event_synchronize", "execute_trace",
    "record_event", "release_trace", "synchronize_device", "wait_for_event",
]  # fmt: skip


def _check_cq(device, cq_id) -> int:
    cq = 0 if cq_id is None else cq_id
    require(
        0 <= cq < device.num_command_queues,
        lambda: f"command queue {cq} does not exist (device has {device.num_command_queues})",
    )
    return cq


def begin_trace_capture(mesh_device, *, cq_id=None) -> int:
    _check_cq(mesh_device, cq_id)
    require(
        mesh_device.trace_region_size > 0,
        "Trace region size must be greater than 0: open the device with trace_region_size",
    )
    require(mesh_device.capturing is None, "A trace capture is already active")
    mesh_device.capturing = []
    mesh_device.capture_cq = cq_id or 0
    trace_id = mesh_device._next_trace_id
    mesh_device._next_trace_id += 1
    return trace_id


def end_trace_capture(mesh_device, trace_id, *, cq_id=None) -> None:
    require(mesh_device.capturing is not None, "end_trace_capture without begin_trace_capture")
    require(
        trace_id == mesh_device._next_trace_id - 1,
        lambda: f"trace {trace_id} is not the one being captured",
    )
    mesh_device.traces[trace_id] = mesh_device.capturing
    mesh_device.capturing = None


def execute_trace(mesh_device, trace_id, *, cq_id=None, blocking=True) -> None:
    _check_cq(mesh_device, cq_id)
    require(
        trace_id in mesh_device.traces,
        lambda: f"trace {trace_id} does not exist (released or never captured)",
    )
    require(mesh_device.capturing is None, "cannot execute a trace while capturing another")
    mesh_device.replaying = True
    try:
        run_kernels(mesh_device.traces[trace_id])
    finally:
        mesh_device.replaying = False


def release_trace(mesh_device, trace_id) -> None:
    require(trace_id in mesh_device.traces, lambda: f"trace {trace_id} does not exist")
    del mesh_device.traces[trace_id]


def synchronize_device(device, cq_id=None, sub_device_ids=()) -> None:
    if cq_id is not None:
        _check_cq(device, cq_id)


@dataclass
class MeshEvent:
    device: object
    cq_id: int
    number: int


def record_event(mesh_device, cq_id=None, sub_device_ids=(), device_range=None) -> MeshEvent:
    cq = _check_cq(mesh_device, cq_id)
    require(
        mesh_device.capturing is None, "record_event is not allowed while a trace is being captured"
    )
    mesh_device._events += 1
    return MeshEvent(mesh_device, cq, mesh_device._events)


def wait_for_event(cq_id=None, mesh_event=None) -> None:
    require(isinstance(mesh_event, MeshEvent), "wait_for_event needs an event from record_event")
    _check_cq(mesh_event.device, cq_id)


def event_synchronize(event) -> None:
    require(isinstance(event, MeshEvent), "event_synchronize needs an event from record_event")
