"""Runs under the lane's Python 3.12 with the real ttnn: open the mock cluster and describe it.

    python oracle_device.py CLUSTER        (n150 | n300 | p150 | t3k)

Prints "<chips> chip(s), <x>x<y>" (the compute grid of the first chip) as its last line.
"""

import sys

import ttnn


def main(cluster: str) -> None:
    if cluster in ("n300", "t3k"):
        shape = ttnn.MeshShape(1, 2) if cluster == "n300" else ttnn.MeshShape(2, 4)
        device = ttnn.open_mesh_device(shape)
        close = ttnn.close_mesh_device
    else:
        device = ttnn.open_device(device_id=0)
        close = ttnn.close_device
    try:
        grid = device.compute_with_storage_grid_size()
        chips = device.get_num_devices()
        print(f"{chips} chip{'s' if chips > 1 else ''}, {grid.x}x{grid.y}")
    finally:
        close(device)


if __name__ == "__main__":
    main(sys.argv[1])
