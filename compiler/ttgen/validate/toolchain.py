"""An inert stand-in for the SFPI RISC-V toolchain (`riscv-tt-elf-g++`), for the mock device only.

`ttnn.open_device` JIT-builds firmware and kernels even on a mock cluster, and the real toolchain
is only downloadable from GitHub. A mock device executes nothing, so the lane installs this script
in its place (stdlib only; runs under the lane's Python 3.12):

- `--version` answers, as tt-metal probes it;
- a compile (`-c -o X.o ... -MF X.d`) writes an empty object and the dependency file;
- a firmware link (`.../firmware/<risc>/<risc>.elf`) copies the pre-compiled firmware ELF the
  wheel ships for that RISC (Wormhole or Blackhole by `-mcpu`);
- a kernel link (`.../kernels/.../<risc>.elf`) writes a minimal RISC-V ELF32 executable that
  tt-metal's loader accepts: one PT_LOAD text segment holding `ret`, a `.rela.text` relocation
  section (XIP conversion needs one) linked to `.symtab`, plus `.strtab` and `.shstrtab`.

Nothing it produces can run on hardware; it exists so that the real validators, allocator and
program factories can be exercised on a mock device.
"""

from __future__ import annotations

import shutil
import struct
import sys
from pathlib import Path

VERSION = "riscv-tt-elf-g++ (ttgen inert stand-in for the mock device) 0.0.0"

# RISC-V ELF constants
_EM_RISCV = 243
_ET_EXEC = 2
_PT_LOAD = 1
_SHT_PROGBITS, _SHT_SYMTAB, _SHT_STRTAB, _SHT_RELA = 1, 2, 3, 4
_SHF_ALLOC_EXEC = 0x2 | 0x4
_RET = 0x00008067  # jalr x0, 0(x1)


def minimal_kernel_elf(entry: int = 0) -> bytes:
    """A valid ELF32 little-endian RISC-V executable: `ret` at `entry`."""
    text = struct.pack("<I", _RET)
    shstrtab = b"\0.text\0.rela.text\0.symtab\0.strtab\0.shstrtab\0"
    names = {n: shstrtab.index(n.encode() + b"\0") for n in
             (".text", ".rela.text", ".symtab", ".strtab", ".shstrtab")}  # fmt: skip
    strtab = b"\0_start\0"
    # symbols: the null symbol, then _start (global, func) in section 1 (.text)
    symtab = struct.pack("<IIIBBH", 0, 0, 0, 0, 0, 0) + struct.pack(
        "<IIIBBH", 1, entry, len(text), (1 << 4) | 2, 0, 1
    )
    rela = b""  # an empty relocation table: present, as the XIP step requires, with no entries

    ehsize, phentsize, shentsize = 52, 32, 40
    text_off = ehsize + phentsize  # text right after the single program header
    sections = [(".text", text), (".rela.text", rela), (".symtab", symtab),
                (".strtab", strtab), (".shstrtab", shstrtab)]  # fmt: skip
    offsets, blob, off = {}, b"", text_off
    for name, data in sections:
        pad = (-off) % 4
        blob += b"\0" * pad
        off += pad
        offsets[name] = off
        blob += data
        off += len(data)
    pad = (-off) % 4
    blob += b"\0" * pad
    shoff = off + pad

    header = b"\x7fELF" + bytes([1, 1, 1, 0]) + b"\0" * 8
    header += struct.pack(
        "<HHIIIIIHHHHHH",
        _ET_EXEC, _EM_RISCV, 1, entry, ehsize, shoff, 0,
        ehsize, phentsize, 1, shentsize, 6, 5,
    )  # fmt: skip
    phdr = struct.pack("<IIIIIIII", _PT_LOAD, text_off, entry, entry, len(text), len(text), 5, 4)

    def sh(name, kind, flags, addr, off, size, link=0, info=0, align=1, entsize=0):
        return struct.pack("<IIIIIIIIII", name, kind, flags, addr, off, size, link, info, align, entsize)  # fmt: skip

    shdrs = sh(0, 0, 0, 0, 0, 0)
    shdrs += sh(names[".text"], _SHT_PROGBITS, _SHF_ALLOC_EXEC, entry, offsets[".text"], len(text), align=4)  # fmt: skip
    shdrs += sh(names[".rela.text"], _SHT_RELA, 0x40, 0, offsets[".rela.text"], len(rela), link=3, info=1, align=4, entsize=12)  # fmt: skip
    shdrs += sh(names[".symtab"], _SHT_SYMTAB, 0, 0, offsets[".symtab"], len(symtab), link=4, info=1, align=4, entsize=16)  # fmt: skip
    shdrs += sh(names[".strtab"], _SHT_STRTAB, 0, 0, offsets[".strtab"], len(strtab))
    shdrs += sh(names[".shstrtab"], _SHT_STRTAB, 0, 0, offsets[".shstrtab"], len(shstrtab))
    return header + phdr + blob + shdrs


def _precompiled_firmware(out: Path, blackhole: bool) -> Path:
    """The wheel's pre-compiled firmware for the RISC named by `out` (…/<risc>/<risc>.elf)."""
    root = Path(__file__).resolve()
    for parent in root.parents:  # the stand-in lives at site-packages/ttnn/runtime/sfpi/...
        pre = parent / "tt_metal" / "pre-compiled"
        if pre.is_dir():
            break
    else:
        raise SystemExit("stand-in toolchain: cannot find ttnn/tt_metal/pre-compiled")
    risc = out.parent.name  # the temporary name is <risc>.<hash>_<pid>.elf; the folder is exact
    for key in sorted(pre.iterdir()):
        is_bh = (key / "active_erisc").is_dir()
        candidate = key / risc / f"{risc}.elf"
        if is_bh == blackhole and candidate.is_file():
            return candidate
    raise SystemExit(f"stand-in toolchain: no pre-compiled firmware for {risc}")


def main(argv: list[str]) -> int:
    if "--version" in argv or "-dumpversion" in argv:
        print(VERSION)
        return 0
    out = Path(argv[argv.index("-o") + 1]) if "-o" in argv else None
    if "-MF" in argv:
        dep = Path(argv[argv.index("-MF") + 1])
        dep.parent.mkdir(parents=True, exist_ok=True)
        dep.write_text(f"{out}:\n" if out else "")
    if out is None:
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    if "-c" in argv or out.suffix != ".elf":
        out.write_bytes(b"")
    elif "/firmware/" in str(out):
        blackhole = any(a.startswith("-mcpu=tt-bh") for a in argv)
        shutil.copyfile(_precompiled_firmware(out, blackhole), out)
    else:
        out.write_bytes(minimal_kernel_elf())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
