"""Bad specs: each error is one `file:LINE: key: what` line (SpecError, exit 2 from the CLI)."""

import re
import shutil
from pathlib import Path

import pytest

from ttgen.cli import main
from ttgen.spec import SpecError, load_spec

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "llama.yaml"


@pytest.fixture
def spec_dir(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "specs"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def _line_of(path: Path, needle: str) -> int:
    """The last line containing `needle` (an edit that duplicates a line is reported at the copy)."""
    return [i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line][-1]


def test_committed_spec_loads():
    spec = load_spec(SPEC)
    assert spec.family == "llama" and len(spec.rules) == 8
    assert spec.target.max_batch == 32 and spec.target.kv_cache == "paged"
    assert {p.name for p in spec.precision_presets} == {"accuracy", "performance", "bf16"}
    assert re.fullmatch(r"[0-9a-f]{64}", spec.sha256)


CASES = [
    # (file, old, new, line needle, expected message)
    ("llama.yaml", "precision: accuracy", "precision: accuracy\nfoo: 1", "foo: 1", "foo: unknown key in spec"),
    ("llama.yaml", "max_batch: 32", 'max_batch: "32"', "max_batch", "target.max_batch: expected an integer"),
    ("llama.yaml", "max_batch: 32", "max_batch: 64", "max_batch", "target.max_batch: must be between 1 and 32"),
    ("llama.yaml", "device: n150", "device: n999", "device: n999", "target.device: unknown value 'n999'"),
    ("llama.yaml", "template: mlp", "template: mlp_fused", "template: mlp_fused", "rules.tt.mlp.template: unknown value 'mlp_fused'"),
    ("llama.yaml", "require: [gated_mlp]", "require: [geglu]", "require: [geglu]", "unknown pattern 'geglu'"),
    ("llama.yaml", "when: [index_math_only]", "when: [is_fast]", "when: [is_fast]", "unknown predicate 'is_fast'"),
    ("llama.yaml", "precision: accuracy", "precision: turbo", "precision: turbo", "precision: unknown value 'turbo'"),
    ("llama.yaml", "- name: tt.lm_head", "- name: tt.mlp", "- name: tt.mlp", "duplicate rule name 'tt.mlp'"),
    ("llama.yaml", "kind: paged", "kind: ring", "kind: ring", "target.kv_cache.kind: unknown value 'ring'"),
    ("llama.yaml", "max_seq_len: 1024", "max_seq_len: 1000", "max_seq_len", "must be a positive multiple of 128"),
    ("llama.yaml", "prefill: 2d, decode: dram_sharded}}\n      ff3", "prefill: 3d, decode: dram_sharded}}\n      ff3", "ff1:", "unknown program kind '3d'"),
    ("llama.yaml", "ff1: {weight: w1,", "ff1: {weight: w9,", "ff1:", "unknown weight 'w9'"),
    ("llama.yaml", "module_pcc: 0.99", "module_pcc: 1.5", "module_pcc", "tests.module_pcc: must be in (0, 1]"),
    ("llama.yaml", "decode_steps: 32", "decode_steps: -5", "decode_steps", "tests.decode_steps: must be a positive count"),
    ("llama.yaml", "teacher_forcing_tokens: 64", "teacher_forcing_tokens: 0", "teacher_forcing_tokens", "must be a positive count"),
    ("llama.yaml", "top5: 0.95", "top5: 1.2", "top5", "tests.top5: must be in [0, 1]"),
    ("llama.yaml", "    template: mlp\n", "    template: mlp\n    ignore: {x: ''}\n", "{x: ''}", "expected the reason"),
    ("common/llama_patterns.yaml", "lookup: embedding(@w_embedding, %tokens)", "lookup: embedding(@w_embedding, %tokens", "%tokens", "patterns.embedding.let.lookup: expected ','"),
    ("common/llama_patterns.yaml", "root: linear(cast(%x), @w_lm_head)", "root: matmul(cast(%x), @w_lm_head)", "matmul(", "unknown op 'matmul'"),
    ("common/llama_patterns.yaml", "w2: bfloat8_b, lm_head: bfloat8_b, embedding: bfloat16, norm: bfloat16}\n    kv_cache: bfloat8_b\n    activations: bfloat16\n    logits: bfloat16",
     "w2: bfloat9_b, lm_head: bfloat8_b, embedding: bfloat16, norm: bfloat16}\n    kv_cache: bfloat8_b\n    activations: bfloat16\n    logits: bfloat16", "bfloat9_b", "unknown value 'bfloat9_b'"),
    ("common/llama_patterns.yaml", "li_ff2: hifi2_fp16, lm_head: hifi2_na, sdpa_prefill: hifi4, sdpa_decode: hifi2, norm: hifi2}\n  performance",
     "li_ff2: hifi3, lm_head: hifi2_na, sdpa_prefill: hifi4, sdpa_decode: hifi2, norm: hifi2}\n  performance", "accuracy:", "unknown compute config 'hifi3'"),
    ("llama.yaml", "  max_batch: 32\n", "  max_batch: 32\n   bad: [\n", "bad: [", "yaml:"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c[4][:40] for c in CASES])
def test_spec_error(spec_dir, case):
    file, old, new, needle, message = case
    path = spec_dir / file
    _edit(path, old, new)
    with pytest.raises(SpecError) as info:
        load_spec(spec_dir / "llama.yaml")
    text = str(info.value)
    assert message in text, text
    where = re.match(r"^(specs/[\w/]+\.yaml):(\d+): ", text)
    assert where, text
    assert where.group(1) == f"specs/{file}"
    if "yaml:" not in message:
        assert int(where.group(2)) == _line_of(path, needle), text


def test_cyclic_import(spec_dir):
    (spec_dir / "common" / "a.yaml").write_text("imports: [b.yaml]\n")
    (spec_dir / "common" / "b.yaml").write_text("imports: [a.yaml]\n")
    _edit(
        spec_dir / "llama.yaml",
        "imports: [common/llama_patterns.yaml]",
        "imports: [common/llama_patterns.yaml, common/a.yaml]",
    )
    with pytest.raises(
        SpecError,
        match=r"specs/common/b.yaml:1: imports: cyclic import: .*a.yaml -> .*b.yaml -> .*a.yaml",
    ):
        load_spec(spec_dir / "llama.yaml")


def test_missing_import(spec_dir):
    _edit(
        spec_dir / "llama.yaml",
        "imports: [common/llama_patterns.yaml]",
        "imports: [common/nope.yaml]",
    )
    with pytest.raises(
        SpecError, match=r"specs/llama.yaml:\d+: imports: no such file 'common/nope.yaml'"
    ):
        load_spec(spec_dir / "llama.yaml")


def test_pattern_defined_twice(spec_dir):
    _edit(
        spec_dir / "llama.yaml",
        "precision: accuracy",
        "precision: accuracy\npatterns:\n  gated_mlp: add(%a, %b)",
    )
    with pytest.raises(SpecError, match=r"patterns.gated_mlp: defined twice"):
        load_spec(spec_dir / "llama.yaml")


def test_cli_reports_spec_error_with_exit_2(spec_dir, capsys):
    _edit(spec_dir / "llama.yaml", "max_batch: 32", "max_batch: 0")
    assert main(["check", "specs/llama.yaml"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and re.match(
        r"ttgen: error: specs/llama.yaml:\d+: target.max_batch: ", err
    )


def test_missing_spec_file(capsys, tmp_path):
    assert main(["check", str(tmp_path / "none.yaml")]) == 2
    assert "no such spec file" in capsys.readouterr().err
