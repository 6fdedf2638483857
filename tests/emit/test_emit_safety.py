"""What emit may touch: only its own package (a manifest inside it), swapped in atomically, under a
name its tests can import; and no string from a spec, a file name or a checkpoint folder's name can
put code into the package."""

from __future__ import annotations

import ast
import importlib
import json
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ttgen.cli import main
from ttgen.emit.writer import MANIFEST, verify_package, write_files

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "specs" / "llama.yaml")
PAYLOAD = 'x"""\n__import__("pathlib").Path("PWNED").touch()\n"""'


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ttgen: error: "), err
    return err[0]


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


# ------------------------------------------------------------------ --out


def test_out_above_other_packages_is_refused_and_deletes_nothing(tmp_path, capsys):
    shutil.copytree(ROOT / "generated" / "llama", tmp_path / "pkgs" / "llama")
    shutil.copytree(ROOT / "generated" / "smollm2", tmp_path / "pkgs" / "smollm2")
    before = _tree(tmp_path)
    assert main(["emit", SPEC, "--out", str(tmp_path / "pkgs")]) == 2
    assert "holds other generated packages (llama, smollm2)" in _err(capsys)
    assert _tree(tmp_path) == before


def test_out_dot_in_a_repository_is_refused(tmp_path, monkeypatch, capsys):
    shutil.copytree(ROOT / "generated", tmp_path / "repo" / "generated")
    monkeypatch.chdir(tmp_path / "repo")
    before = _tree(tmp_path)
    assert main(["emit", SPEC, "--out", "."]) == 2
    assert "holds other generated packages" in _err(capsys)
    assert _tree(tmp_path) == before


@pytest.mark.parametrize(
    "name,message",
    [
        ("torch", "installed or standard-library module"),
        ("json", "installed or standard-library module"),
        ("smollm2.v2", "not a valid Python package name"),
        ("my-model", "not a valid Python package name"),
        ("class", "not a valid Python package name"),
    ],
)
def test_out_names_its_tests_cannot_import_are_refused(tmp_path, capsys, name, message):
    assert main(["emit", SPEC, "--out", str(tmp_path / name)]) == 2
    assert message in _err(capsys)
    assert not any(tmp_path.iterdir())


def test_out_with_files_ttgen_did_not_write_is_refused(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.py").write_text("print('mine')\n")
    before = _tree(tmp_path)
    assert main(["emit", SPEC, "--out", str(tmp_path / "mine")]) == 2
    assert "holds files ttgen did not write" in _err(capsys)
    assert _tree(tmp_path) == before


def _package(files: dict[str, str], plan: str = "p" * 64) -> dict[str, str]:
    from ttgen.emit.writer import MARKER, manifest_text

    body = {name: f"# {MARKER} (plan sha256:{plan[:16]})\n{text}" for name, text in files.items()}
    return body | {MANIFEST: manifest_text(body, plan)}


def test_emit_replaces_only_what_its_manifest_lists(tmp_path):
    out = tmp_path / "pkg"
    write_files(_package({"a.py": "A = 1\n", "sub/b.py": "B = 1\n"}), out)
    (out / "notes.md").write_text("my notes\n")  # the user's own file inside the package
    (out / "__pycache__").mkdir()
    (out / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"stale")
    changed = write_files(_package({"a.py": "A = 2\n"}, plan="q" * 64), out)
    assert set(changed) == {"a.py", MANIFEST, "-sub/b.py"}
    assert (out / "notes.md").read_text() == "my notes\n"  # carried over
    assert not (out / "sub" / "b.py").exists()  # the earlier emission's file is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]  # no orphans beside it
    verify_package(out)


# ------------------------------------------------------------------ atomic emit

_WRITER = """
import sys, time
sys.path.insert(0, {compiler!r})
from ttgen.emit.writer import MANIFEST, MARKER, manifest_text, write_files
plan = sys.argv[1] * 64
body = {{f"m{{i}}.py": f"# {{MARKER}} (plan sha256:{{plan[:16]}})\\n" + f"X = {{plan[:1]!r}}\\n" * 20000 for i in range(200)}}
files = body | {{MANIFEST: manifest_text(body, plan)}}
print("writing", flush=True)
start = time.perf_counter()
write_files(files, {out!r})
print(time.perf_counter() - start, flush=True)
"""


def _consistent(out: Path) -> str:
    """The package is one whole emission: its manifest's plan, or a TtgenError."""
    verify_package(out)
    manifest = json.loads((out / MANIFEST).read_text())
    plans = {(out / n).read_text().split("plan sha256:", 1)[1][:16] for n in manifest["files"]}
    assert plans == {manifest["plan_sha256"][:16]}
    return manifest["plan_sha256"][0]


def test_a_write_killed_at_any_point_leaves_one_whole_package(tmp_path):
    out = tmp_path / "pkg"
    script = _WRITER.format(compiler=str(ROOT / "compiler"), out=str(out))
    subprocess.run([sys.executable, "-c", script, "a"], check=True, capture_output=True)
    done = subprocess.run(
        [sys.executable, "-c", script, "b"], check=True, capture_output=True, text=True
    )
    duration = float(done.stdout.split()[-1])  # the write alone
    rng, seen, killed = random.Random(11), set(), 0
    for attempt in range(10):
        plan = "ab"[attempt % 2]
        proc = subprocess.Popen(
            [sys.executable, "-c", script, plan], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(rng.uniform(0.0, 1.5 * duration))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        seen.add(_consistent(out))  # whole old or whole new, at every point
    # (which of the two a kill leaves depends on the machine's speed; each is whole)
    assert killed >= 5 and seen <= {"a", "b"}
    for plan in "ba":
        subprocess.run([sys.executable, "-c", script, plan], check=True, capture_output=True)
        assert _consistent(out) == plan
    assert [p.name for p in tmp_path.iterdir()] == ["pkg"]  # the next emit cleaned every orphan


def test_an_emit_killed_at_random_points_never_mixes_precisions(tmp_path):
    out = tmp_path / "pkg"
    cmd = [sys.executable, "-m", "ttgen.cli", "emit", SPEC, "--seq-len", "64", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    accuracy = _tree(out)
    start = time.perf_counter()
    subprocess.run([*cmd, "--precision", "performance"], check=True, capture_output=True)
    duration = time.perf_counter() - start
    performance = _tree(out)
    rng = random.Random(5)
    for attempt in range(4):
        precision = ("accuracy", "performance")[attempt % 2]
        proc = subprocess.Popen(
            [*cmd, "--precision", precision], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.5 * duration, 1.05 * duration))  # the later part: render and write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _consistent(out)
        assert _tree(out) in (accuracy, performance)
    subprocess.run(cmd, check=True, capture_output=True)
    assert _tree(out) == accuracy
    assert [p.name for p in tmp_path.iterdir()] == ["pkg"]


# ------------------------------------------------------------------ no spec string reaches code


def _imports_cleanly(package: Path, cwd: Path) -> None:
    """Every generated file parses, holds no call the payload would add, and imports without
    running anything of it."""
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text())
        assert not [
            n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "__import__"
        ], path
    proc = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(package.parent)!r}); "
         f"from ttgen.emu.backend import select_backend; select_backend('emu'); "
         f"import importlib; [importlib.import_module('{package.name}.' + m) for m in "
         f"('model_config', 'weights', 'model', 'generator', 'tests.conftest')]"],
        cwd=cwd, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (cwd / "PWNED").exists() and not (package.parent / "PWNED").exists()


# every string a spec holds, with a hostile value: refused at load with one line, or (where the
# string never reaches code) emitted into a package that imports cleanly
HOSTILE = [
    ("family", "family: llama", f"family: {json.dumps(PAYLOAD)}"),
    ("model", "family: llama", f"family: llama\nmodel: {json.dumps(PAYLOAD)}"),
    ("device", "device: n150", f"device: {json.dumps(PAYLOAD)}"),
    ("kv kind", "kind: paged", f"kind: {json.dumps(PAYLOAD)}"),
    ("precision", "precision: accuracy", f"precision: {json.dumps(PAYLOAD)}"),
    ("rule name", "- name: tt.lm_head", f"- name: {json.dumps(PAYLOAD)}"),
    ("template", "template: mlp", f"template: {json.dumps(PAYLOAD)}"),
    ("weight name", "weights: {w1: w_gate,", f"weights: {{{json.dumps(PAYLOAD)}: w_gate, w1: w_gate,"),
    ("weight capture", "weights: {w1: w_gate,", f"weights: {{w1: {json.dumps(PAYLOAD)},"),
    ("op name", "      ff3: {weight: w3,", f"      {json.dumps(PAYLOAD)}: {{weight: w3}}\n      ff3: {{weight: w3,"),
    ("op weight", "ff1: {weight: w1,", f"ff1: {{weight: {json.dumps(PAYLOAD)},"),
    ("op fidelity", "fidelity: li_ff1_ff3, program", f"fidelity: {json.dumps(PAYLOAD)}, program"),
    ("program kind", "prefill: 2d, decode: dram_sharded}}\n      ff3", f"prefill: {json.dumps(PAYLOAD)}, decode: dram_sharded}}}}\n      ff3"),
    ("require", "require: [gated_mlp]", f"require: [{json.dumps(PAYLOAD)}]"),
    ("when", "when: [index_math_only]", f"when: [{json.dumps(PAYLOAD)}]"),
    ("ignore key", "    template: mlp\n", f"    template: mlp\n    ignore: {{{json.dumps(PAYLOAD)}: a reason}}\n"),
    ("import", "imports: [common/llama_patterns.yaml]", f"imports: [common/llama_patterns.yaml, {json.dumps(PAYLOAD)}]"),
    ("preset name", "precision: accuracy", f"precision: accuracy\nprecision_presets:\n  {json.dumps(PAYLOAD)}: {{}}"),
    ("compute config name", "precision: accuracy", f"precision: accuracy\ncompute_configs:\n  {json.dumps(PAYLOAD)}: {{math_fidelity: LoFi}}"),
    ("pattern name", "precision: accuracy", f"precision: accuracy\npatterns:\n  {json.dumps(PAYLOAD)}: add(%a, %b)"),
    ("module glob", "match: {module: lm_head,", f"match: {{module: {json.dumps(PAYLOAD)},"),
]  # fmt: skip


@pytest.mark.parametrize("case", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_spec_strings_are_refused(case, tmp_path, monkeypatch, capsys):
    _, old, new = case
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "specs" / "llama.yaml"
    assert old in spec.read_text(), old
    spec.write_text(spec.read_text().replace(old, new, 1))
    code = main(["emit", "specs/llama.yaml", "--seq-len", "64", "--out", "out/pkg"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code in (1, 2) and len(err) == 1 and err[0].startswith("ttgen: error: "), err
    assert not (tmp_path / "out").exists() and not (tmp_path / "PWNED").exists()


def test_hostile_text_that_reaches_comments_is_escaped(tmp_path, monkeypatch):
    """Free text that does reach the package — the spec's file name (headers, conftest), a
    checkpoint folder's name, a pattern's doc and an ignore reason (neither reaches code) — with
    quotes, newlines and code in it: the package imports and runs none of it."""
    from tests.e2e.test_families import _checkpoint

    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    monkeypatch.chdir(tmp_path)
    hostile_spec = tmp_path / "specs" / f"{PAYLOAD}.yaml"
    text = (tmp_path / "specs" / "llama.yaml").read_text()
    text = re.sub(r"key_pos: .*", lambda m: f"key_pos: {json.dumps(PAYLOAD)}", text)
    hostile_spec.write_text(text)
    patterns = tmp_path / "specs" / "common" / "llama_patterns.yaml"
    patterns.write_text(
        re.sub(
            r"doc: token embedding lookup.*",
            lambda m: f"doc: {json.dumps(PAYLOAD)}",
            patterns.read_text(),
        )
    )
    ckpt = _checkpoint(tmp_path / "cks", "llama", name=PAYLOAD.replace("/", "_"))
    out = tmp_path / "out" / "pkg"
    assert main(["emit", str(hostile_spec.relative_to(tmp_path)), "--checkpoint", str(ckpt), "--seq-len", "64",
                 "--out", str(out)]) == 0  # fmt: skip
    header = (out / "model.py").read_text().splitlines()[0]
    assert header.startswith('# @generated by ttgen from specs/x\\"\\"\\"\\n__import__(')
    _imports_cleanly(out, tmp_path)
    importlib.invalidate_caches()
