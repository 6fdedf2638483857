"""Runs under the lane's Python 3.12 with the real ttnn: can the mock device capture a Metal trace?

One ttnn.add is compiled, captured, replayed and released; the script prints each stage. (On
0.81.1 the mock dispatcher dies with SIGSEGV inside the capture; the lane reports that.)
"""

import torch
import ttnn


def main() -> None:
    device = ttnn.open_device(device_id=0, trace_region_size=8 << 20)
    try:
        a = ttnn.from_torch(torch.randn(1, 1, 32, 256), dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT,
                            device=device)  # fmt: skip
        ttnn.deallocate(ttnn.add(a, a))
        print("compiled", flush=True)
        trace_id = ttnn.begin_trace_capture(device, cq_id=0)
        try:
            ttnn.add(a, a)
        finally:
            ttnn.end_trace_capture(device, trace_id, cq_id=0)
        print("captured", flush=True)
        ttnn.execute_trace(device, trace_id, cq_id=0, blocking=True)
        print("replayed", flush=True)
        ttnn.release_trace(device, trace_id)
    finally:
        ttnn.close_device(device)


if __name__ == "__main__":
    main()
