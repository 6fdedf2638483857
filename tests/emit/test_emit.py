"""The emitter: golden output, byte stability, locality of changes, failure without output, and the
generated code's imports and ttnn calls."""

import ast
import dataclasses
import json
from importlib import resources
from pathlib import Path

import pytest

from ttgen.emit.emit import render
from ttgen.emit.writer import MANIFEST, write_files
from ttgen.pipeline import analyze
from ttgen.plan import PlanError, make_plan
from ttgen.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "generated" / "llama"


@pytest.fixture(scope="module")
def analysis():
    return analyze(load_spec(ROOT / "specs" / "llama.yaml"), seq_len=128)


@pytest.fixture(scope="module")
def files(analysis):
    plan = make_plan(analysis)
    return render(plan)


def test_committed_tree_equals_a_fresh_emission(files, tmp_path):
    """generated/llama is exactly what `ttgen emit specs/llama.yaml` writes (no drift, no hand edits)."""
    write_files(files, tmp_path / "llama")
    committed = _package_files(GENERATED)
    assert set(committed) == set(files), "file sets differ"
    for name, text in files.items():
        assert committed[name] == text, (
            f"generated/llama/{name} differs from a fresh emission: run `ttgen emit specs/llama.yaml`"
        )


def _package_files(folder: Path) -> dict[str, str]:
    """Every file of a package folder but the caches Python and pytest leave."""
    return {
        p.relative_to(folder).as_posix(): p.read_text()
        for p in folder.rglob("*")
        if p.is_file() and not {"__pycache__", ".pytest_cache"} & set(p.parts)
    }


def test_emitting_twice_gives_identical_bytes(analysis, files, tmp_path):
    again = render(make_plan(analysis))
    assert again == files
    out = tmp_path / "pkg"
    assert write_files(files, out) and write_files(again, out) == []  # nothing rewritten


def test_changing_one_rule_changes_only_its_files(analysis, files):
    spec = analysis.spec
    rules = []
    for rule in spec.rules:
        if rule.name == "tt.mlp":
            # ff2 at HiFi2 with fp32 accumulation (a compute config attention already uses)
            ops = tuple(
                dataclasses.replace(o, fidelity=(("prefill", "li_qkv"), ("decode", "li_qkv")))
                if o.name == "ff2"
                else o
                for o in rule.ops
            )
            rule = dataclasses.replace(rule, ops=ops)
        rules.append(rule)
    changed = dataclasses.replace(analysis, spec=dataclasses.replace(spec, rules=tuple(rules)))
    other = render(make_plan(changed))

    def body(text: str) -> str:  # below the header, which names the plan's hash
        return text.split("\n", 1)[1]

    differing = {
        name for name in files if name.endswith(".py") and body(files[name]) != body(other[name])
    }
    assert differing == {"mlp.py"}
    # the headers and the manifest name the new plan: a package mixing the two is detectable
    assert all(
        files[n].splitlines()[0] != other[n].splitlines()[0] for n in files if n.endswith(".py")
    )
    assert files[MANIFEST] != other[MANIFEST]


def test_invalid_plan_emits_nothing(analysis, tmp_path):
    spec = analysis.spec
    bad = dataclasses.replace(
        analysis,
        spec=dataclasses.replace(
            spec, target=dataclasses.replace(spec.target, max_seq_len=128 * 1024)
        ),
    )
    with pytest.raises(PlanError):
        make_plan(bad)
    from ttgen.cli import main

    out = tmp_path / "out"
    assert main(["emit", "specs/llama.yaml", "--preset", "llama-3.1-70b", "--out", str(out)]) == 2
    assert not out.exists() or not list(out.rglob("*.py"))


def _imports(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_generated_imports_only_ttnn_torch_and_stdlib(files):
    import sys

    for name, text in files.items():
        allowed = {"ttnn", "torch", *sys.stdlib_module_names}
        if name.startswith("tests/"):
            allowed |= {"transformers", "pytest"}
        extra = _imports(ast.parse(text)) - allowed
        assert not extra, f"{name} imports {extra}"


def _manifest():
    return json.loads(resources.files("ttgen.emu").joinpath("api", "ttnn-0.81.1.json").read_text())


def _dotted(node) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id == "ttnn":
        return ".".join(["ttnn", *reversed(parts)])
    return None


def test_every_ttnn_call_exists_with_its_keywords(files):
    manifest = _manifest()
    entries = {**manifest["functions"], **manifest["classes"]}
    enums = manifest["enums"]
    checked = 0
    for name, text in files.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and (target := _dotted(node.func)):
                assert target in entries, f"{name}:{node.lineno}: {target} is not in ttnn 0.81.1"
                overloads = entries[target].get("overloads") or [entries[target]]
                keywords = {k.arg for k in node.keywords if k.arg}
                assert any(
                    keywords <= {p["name"] for p in o.get("params", [])} for o in overloads
                ), (
                    f"{name}:{node.lineno}: {target} has no keyword(s) {keywords - {p['name'] for o in overloads for p in o.get('params', [])}}"
                )
                positional = len(node.args)
                assert any(
                    positional <= len([p for p in o.get("params", []) if p["kind"] == "positional"])
                    for o in overloads
                ), (
                    f"{name}:{node.lineno}: {target} takes fewer positional arguments than {positional}"
                )
                checked += 1
            elif (
                isinstance(node, ast.Attribute)
                and (target := _dotted(node))
                and target.count(".") == 2
            ):
                enum, member = target.rsplit(".", 1)
                if enum in enums:
                    assert member in enums[enum], (
                        f"{name}:{node.lineno}: {target} is not a member of {enum}"
                    )
    assert checked > 50


def _device_attribute_errors(name: str, text: str) -> list[str]:
    real = set(
        json.loads(
            resources.files("ttgen.emu").joinpath("api", "mesh_device-0.81.1.json").read_text()
        )["attributes"]
    )
    errors = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Attribute):
            owner = node.value
            owner_name = (
                owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            )
            if owner_name in ("device", "dev", "mesh_device") and node.attr not in real:
                errors.append(f"{name}:{node.lineno}: MeshDevice has no attribute {node.attr!r}")
    return errors


def test_device_attributes_exist_on_the_real_mesh_device(files):
    """`device.X` / `self.device.X` in generated code names only what ttnn 0.81.1's MeshDevice has
    (the emulator's device carries more, for its own use; the ttnn lane found `num_command_queues`
    used by the generator although the real device has no such attribute)."""
    assert [e for name, text in files.items() for e in _device_attribute_errors(name, text)] == []
    assert _device_attribute_errors("g.py", "self.device.num_command_queues == 2") == [
        "g.py:1: MeshDevice has no attribute 'num_command_queues'"
    ]
    assert _device_attribute_errors("g.py", "device.compute_with_storage_grid_size()") == []


def test_generated_code_passes_ruff(files, tmp_path):
    import subprocess
    import sys

    write_files(files, tmp_path / "pkg")
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml"), str(tmp_path / "pkg")],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stdout


def test_committed_smollm2_equals_a_fresh_emission(tmp_path):
    """generated/smollm2 is `ttgen emit` of the smollm2-135m preset as the Makefile's demo emits it."""
    from ttgen.cli import main

    out = tmp_path / "smollm2"
    args = ["emit", "specs/llama.yaml", "--preset", "smollm2-135m", "--batch", "4", "--max-seq-len", "512",
            "--precision", "bf16", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    committed = ROOT / "generated" / "smollm2"
    assert _package_files(out) == _package_files(committed)


@pytest.mark.parametrize(
    "variant",
    [
        ("static", "kv_cache: {kind: paged, block_size: 32}", "kv_cache: {kind: static}"),
        ("qwen2", "family: llama", "family: qwen2"),  # q/k/v bias
        ("mistral", "family: llama", "family: mistral"),  # sliding window
        # prefill matmuls in row chunks of 64 (the long-prefill reshape, at a size the emulator runs
        # in seconds)
        (
            "rows",
            "{prefill: 2d, decode: dram_sharded}",
            "{prefill: {kind: 2d, rows: 64}, decode: dram_sharded}",
        ),
    ],
    ids=lambda v: v[0],
)
def test_variants_emit_and_pass_their_parity_tests(variant, tmp_path, monkeypatch):
    """The static KV cache, Qwen2's bias and Mistral's sliding window go through the same templates;
    their generated tests pass on the emulator."""
    import shutil
    import subprocess
    import sys

    from ttgen.cli import main

    name, old, new = variant
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    spec = tmp_path / "specs" / "llama.yaml"
    spec.write_text(spec.read_text().replace(old, new))
    monkeypatch.chdir(tmp_path)
    assert main(["emit", "specs/llama.yaml", "--seq-len", "64", "--out", f"gen/{name}"]) == 0
    if name == "rows":  # the chunked path is in the code the tests run
        assert "PREFILL_CHUNKS = {" in (tmp_path / "gen" / name / "mlp.py").read_text()
        assert "if seq_len in QKV_" in (tmp_path / "gen" / name / "attention.py").read_text()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--ttnn=emu", f"gen/{name}"],
                          capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]


@pytest.mark.parametrize(
    "sabotage",
    [
        # a loader that drops the norm weight (uses HF's init value of 1)
        (
            "norm",
            "family: llama",
            "family: llama",
            "rmsnorm.py",
            "weight.reshape(1, 1, DIM // 32, 32)",
            "torch.ones_like(weight).reshape(1, 1, DIM // 32, 32)",
        ),
        # a loader that drops Qwen2's q/k/v bias (uses HF's init value of 0)
        (
            "bias",
            "family: llama",
            "family: qwen2",
            "attention.py",
            '_proj.bias"]',
            '_proj.bias"] * 0',
        ),
    ],
    ids=lambda v: v[0],
)
def test_generated_tests_fail_when_a_weight_is_dropped(sabotage, tmp_path, monkeypatch):
    """The generated tests run on weights where no parameter is constant, so a loader that drops a
    norm weight or a bias fails them (under HF's default init both would pass)."""
    import shutil
    import subprocess
    import sys

    from ttgen.cli import main

    name, old, new, file, broken_old, broken_new = sabotage
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    spec = tmp_path / "specs" / "llama.yaml"
    spec.write_text(spec.read_text().replace(old, new))
    monkeypatch.chdir(tmp_path)
    assert main(["emit", "specs/llama.yaml", "--seq-len", "64", "--out", f"gen/{name}"]) == 0
    path = tmp_path / "gen" / name / file
    text = path.read_text()
    assert broken_old in text
    path.write_text(text.replace(broken_old, broken_new))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--ttnn=emu",
                           f"gen/{name}/tests/test_modules.py"], capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1 and " failed" in proc.stdout, proc.stdout[-3000:]
