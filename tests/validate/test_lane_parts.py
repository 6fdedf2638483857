"""The ttnn lane's parts that run without the real package: the toolchain stand-in's ELF, the
rejection-parity cases on the emulator, and the generated-code driver on the emulator. (The lane
itself, `make validate-ttnn`, runs them against the real ttnn 0.81.1.)"""

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ttgen import emu
from ttgen.validate import toolchain
from ttgen.validate.rejection_cases import CASES, EMULATOR_STRICTER, run_case

ROOT = Path(__file__).resolve().parents[2]


def _sections(elf: bytes) -> dict[str, tuple[int, int, int]]:
    """name -> (type, offset, size) of an ELF32 little-endian file."""
    shoff, shentsize, shnum, shstrndx = (struct.unpack_from("<I", elf, 32)[0],
                                         *struct.unpack_from("<HHH", elf, 46))  # fmt: skip
    headers = [struct.unpack_from("<IIIIIIIIII", elf, shoff + i * shentsize) for i in range(shnum)]
    strtab = headers[shstrndx]
    names = elf[strtab[4] : strtab[4] + strtab[5]]
    return {
        names[h[0] : names.index(b"\0", h[0])].decode(): (h[1], h[4], h[5]) for h in headers[1:]
    }


def test_kernel_elf_is_what_the_loader_needs():
    elf = toolchain.minimal_kernel_elf()
    assert elf[:4] == b"\x7fELF" and elf[4] == 1 and elf[5] == 1  # ELF32, little-endian
    e_type, e_machine = struct.unpack_from("<HH", elf, 16)
    assert (e_type, e_machine) == (2, 243)  # executable, RISC-V
    phoff, phnum = struct.unpack_from("<I", elf, 28)[0], struct.unpack_from("<H", elf, 44)[0]
    p_type, p_offset, _, _, p_filesz = struct.unpack_from("<IIIII", elf, phoff)
    assert phnum == 1 and p_type == 1 and p_offset % 4 == 0 and p_filesz == 4
    assert struct.unpack_from("<I", elf, p_offset)[0] == 0x00008067  # ret
    sections = _sections(elf)
    assert sections[".rela.text"][0] == 4  # SHT_RELA: the XIP step needs a relocation section
    assert {".text", ".symtab", ".strtab", ".shstrtab"} <= set(sections)


def test_stand_in_answers_version_and_writes_outputs(tmp_path):
    script = ROOT / "compiler" / "ttgen" / "validate" / "toolchain.py"

    def run(*args):
        return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True)

    assert run("--version").returncode == 0
    obj, dep = tmp_path / "k.o", tmp_path / "k.d"
    assert run("-c", "x.cpp", "-o", str(obj), "-MF", str(dep)).returncode == 0
    assert obj.read_bytes() == b"" and dep.read_text().startswith(str(obj))
    elf = tmp_path / "kernels" / "k" / "trisc0.elf"
    assert run("x.o", "-o", str(elf)).returncode == 0
    assert elf.read_bytes() == toolchain.minimal_kernel_elf()


@pytest.fixture(scope="module")
def device():
    dev = emu.open_device(device_id=0)
    yield dev
    emu.close_device(dev)


def test_parity_cases_are_enough_and_named_once():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    assert sum(not c.valid for c in CASES) >= 30
    assert set(EMULATOR_STRICTER) <= set(names)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_emulator_verdict(case, device):
    """The verdict the real 0.81.1 gives (the lane checks that): invalid calls rejected, valid
    controls accepted; the listed stricter cases are rejected by the emulator alone."""
    verdict = run_case(case, emu, torch, device)["verdict"]
    expected = "accepts" if case.valid and case.name not in EMULATOR_STRICTER else "rejects"
    assert verdict == expected, run_case(case, emu, torch, device)


def test_driver_records_the_generated_model_on_the_emulator(tmp_path):
    from ttgen.models.registry import build_model, get_family

    model, _ = build_model(get_family("llama"), preset="tiny")
    weights = tmp_path / "w.json"
    weights.write_text(json.dumps({k: list(v.shape) for k, v in model.state_dict().items()}))
    out = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, str(ROOT / "compiler/ttgen/validate/drive_generated.py"), str(ROOT / "generated/llama"),
                           str(weights), str(out), "--emu", "--prefill", "128", "--decode-steps", "1"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["error"] is None
    phases = {r["phase"] for r in data["records"]}
    assert phases == {"load weights", "prefill 128", "decode step 0"}
    decode = [r for r in data["records"] if r["phase"] == "decode step 0"]
    concat = next(r for r in decode if r["op"] == "experimental.nlp_concat_heads_decode")
    assert concat["site"] == "attention.forward_decode"
    assert concat["outputs"][0]["shape"] == [1, 1, 32, 256]
    assert concat["outputs"][0]["memory"] == "WIDTH_SHARDED"

    # the committed package's run is its plan, call for call and spec for spec
    import dataclasses

    from ttgen.pipeline import analyze
    from ttgen.plan import make_plan
    from ttgen.spec import load_spec
    from ttgen.validate.plan_check import compare_with_plan

    plan = make_plan(analyze(load_spec(ROOT / "specs" / "llama.yaml")))
    for phase, calls in (("prefill 128", 48), ("decode step 0", 54)):
        assert compare_with_plan(plan, data["records"], phase) == (calls, None)
    # a plan that says another dtype for one output is caught
    mlp = next(m for m in plan.modules if m.template == "mlp")
    ops = tuple(dataclasses.replace(op, output=dataclasses.replace(op.output, dtype="bfloat16"))
                if op.name == "gate_mul" else op for op in mlp.program("decode"))  # fmt: skip
    wrong = dataclasses.replace(
        mlp, ops=(*(x for x in mlp.ops if x[0] != "decode"), ("decode", ops))
    )
    bad = dataclasses.replace(plan, modules=tuple(wrong if m is mlp else m for m in plan.modules))
    compared, diff = compare_with_plan(bad, data["records"], "decode step 0")
    assert diff is not None and "gate_mul" in diff


def test_missing_python312_is_one_clear_error(monkeypatch, tmp_path):
    from ttgen.errors import TtgenError
    from ttgen.validate import lane

    monkeypatch.setenv("TTGEN_CACHE", str(tmp_path))
    monkeypatch.setattr(lane.glob, "glob", lambda _pattern: [])
    monkeypatch.setattr(lane.shutil, "which", lambda _name: None)
    with pytest.raises(TtgenError, match="no Python 3.12 interpreter"):
        lane.ensure_lane()
    assert lane.main(["--quick"]) == 2  # the lane says so in one line, exit 2
    assert not (tmp_path / "ttnn-lane" / "venv").exists()  # nothing half-built
