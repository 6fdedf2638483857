"""Host conversion cases shared by the real-ttnn oracle and the emulator side of the lane.
Imports nothing but its arguments, so it runs under either interpreter."""

# (input name, dtype, layout, operation)
CASES = [
    (name, dtype, layout, op)
    for name in ("floats", "odd")
    for dtype, layout in (
        ("bfloat16", "ROW_MAJOR_LAYOUT"), ("bfloat16", "TILE_LAYOUT"), ("float32", "ROW_MAJOR_LAYOUT"),
        ("float32", "TILE_LAYOUT"), ("bfloat8_b", "TILE_LAYOUT"), ("bfloat4_b", "TILE_LAYOUT"),
        ("bfloat8_b", "ROW_MAJOR_LAYOUT"),
    )
    for op in ("round_trip", "to_row_major", "typecast_bfloat16")
] + [("ints", dtype, layout, "round_trip") for dtype in ("uint32", "int32") for layout in ("ROW_MAJOR_LAYOUT", "TILE_LAYOUT")]  # fmt: skip


def run_case(ttnn, torch, x, dtype, layout, op):
    t = ttnn.from_torch(x, dtype=getattr(ttnn, dtype), layout=getattr(ttnn, layout))
    if op == "to_row_major":
        t = ttnn.to_layout(t, ttnn.ROW_MAJOR_LAYOUT)
    elif op == "typecast_bfloat16":
        t = ttnn.typecast(t, ttnn.bfloat16)
    out = ttnn.to_torch(t)
    info = {
        "shape": list(t.shape),
        "padded_shape": list(t.padded_shape),
        "dtype": t.dtype.name,
        "layout": t.layout.name,
        "torch_dtype": str(out.dtype),
    }
    return info, out
