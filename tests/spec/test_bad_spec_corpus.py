"""A corpus of malformed specs, each run through `ttgen emit` as a user would: exit 2, one line naming
file:line and what is wrong, and nothing written (no package folder, no stray file)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from ttgen.cli import main

ROOT = Path(__file__).resolve().parents[2]
L, P, C = "llama.yaml", "common/llama_patterns.yaml", "common/compute_configs.yaml"

# (id, file edited, old text, new text, needle on the line the error must name, message fragment);
# old=None writes `new` as the whole file (bytes allowed).
CORPUS = [
    # --- the file itself
    ("empty file", L, None, "", 1, "expected a mapping at the top level"),
    ("a list at top level", L, None, "- family: llama\n", 1, "expected a mapping at the top level"),
    ("a scalar at top level", L, None, "llama\n", 1, "expected a mapping at the top level"),
    ("not UTF-8", L, None, b"family: llama\n\xff\xfe: 1\n", 2, "not UTF-8 text"),
    ("nested 100k deep", L, None, "x: " + "[" * 100_000, 1, "nested deeper than 64 levels"),
    ("13 MB", L, None, "family: llama\n" + " " * (13 << 20), 1, "larger than 1024 KiB"),
    ("yaml syntax", L, "  max_batch: 32\n", "  max_batch: 32\n   bad: [\n", "bad: [", "yaml:"),
    ("tab indentation", L, "  max_batch: 32", "\tmax_batch: 32", "max_batch", "yaml:"),
    ("duplicate key", L, "precision: accuracy", "precision: accuracy\nprecision: bf16", "precision: bf16", "duplicate key 'precision'"),
    ("non-string key", L, "precision: accuracy", "precision: accuracy\n7: x", "7: x", "keys must be strings"),
    ("unknown top-level key", L, "precision: accuracy", "precision: accuracy\nfoo: 1", "foo: 1", "foo: unknown key in spec"),
    # --- family, model, imports
    ("family missing", L, "family: llama\n", "", "imports:", "missing required key 'family'"),
    ("family unknown", L, "family: llama", "family: gpt9", "family: gpt9", "family: unknown value 'gpt9'"),
    ("family with a newline", L, "family: llama", 'family: "ll\\nama"', "family:", "family: unknown value"),
    ("family not a string", L, "family: llama", "family: [llama]", "family:", "family: expected a string"),
    ("model kind unknown", L, "family: llama", "family: llama\nmodel: seq2seq", "model: seq2seq", "model: unknown value 'seq2seq'"),
    ("import missing", L, "imports: [common/llama_patterns.yaml]", "imports: [common/nope.yaml]", "imports:", "no such file 'common/nope.yaml'"),
    ("import outside the spec folder", L, "imports: [common/llama_patterns.yaml]", "imports: [/etc/passwd]", "imports:", "outside the spec's folder"),
    ("import climbing out", L, "imports: [common/llama_patterns.yaml]", "imports: [../../../../etc/hostname]", "imports:", "outside the spec's folder"),
    ("import of a non-yaml file", L, "imports: [common/llama_patterns.yaml]", "imports: [common/llama_patterns.yaml, ../llama.py]", "imports:", "outside the spec's folder"),
    ("import twice", L, "imports: [common/llama_patterns.yaml]", "imports:\n  - common/llama_patterns.yaml\n  - common/llama_patterns.yaml", "  - common/llama_patterns.yaml", "already imported (at specs/llama.yaml:7)"),
    ("import not a string", L, "imports: [common/llama_patterns.yaml]", "imports: [common/llama_patterns.yaml, 5]", "imports:", "expected a file path, got 5"),
    ("imports not a list", L, "imports: [common/llama_patterns.yaml]", "imports: common/llama_patterns.yaml", "imports:", "imports: expected a list"),
    ("cyclic import", C, "compute_configs:\n", "imports: [llama_patterns.yaml]\ncompute_configs:\n", "imports:", "cyclic import"),
    ("imported file with rules", P, "patterns:\n", "rules: []\npatterns:\n", "rules: []", "unknown key in imported file"),
    # --- target
    ("target missing", L, "target:\n  device: n150\n  max_batch: 32\n  max_seq_len: 1024\n  kv_cache: {kind: paged, block_size: 32}\n", "", "family:", "missing required key 'target'"),
    ("device unknown", L, "device: n150", "device: n999", "device: n999", "target.device: unknown value 'n999'"),
    ("max_batch a string", L, "max_batch: 32", 'max_batch: "32"', "max_batch", "target.max_batch: expected an integer"),
    ("max_batch too big", L, "max_batch: 32", "max_batch: 33", "max_batch", "target.max_batch: must be between 1 and 32"),
    ("max_batch zero", L, "max_batch: 32", "max_batch: 0", "max_batch", "target.max_batch: must be between 1 and 32"),
    ("max_batch a bool", L, "max_batch: 32", "max_batch: true", "max_batch", "target.max_batch: expected an integer"),
    ("max_seq_len not a multiple of 128", L, "max_seq_len: 1024", "max_seq_len: 1000", "max_seq_len", "must be a positive multiple of 128"),
    ("max_seq_len negative", L, "max_seq_len: 1024", "max_seq_len: -128", "max_seq_len", "must be a positive multiple of 128"),
    ("kv cache kind unknown", L, "kind: paged", "kind: ring", "kind: ring", "target.kv_cache.kind: unknown value 'ring'"),
    ("kv block size odd", L, "block_size: 32", "block_size: 48", "block_size", "target.kv_cache.block_size: must be a positive multiple of 32"),
    ("unknown target key", L, "  max_batch: 32\n", "  max_batch: 32\n  mesh: t3k\n", "mesh: t3k", "unknown key in target"),
    # --- precision presets and compute configs
    ("precision unknown", L, "precision: accuracy", "precision: turbo", "precision: turbo", "precision: unknown value 'turbo'"),
    ("preset name with quotes and a newline", P, "  bf16:\n", '  "x\\"\\"\\"\\nimport os":\n', '"x', "is not a valid name"),
    ("compute config name with a hyphen", C, "  lofi: {math_fidelity: LoFi", "  lo-fi: {math_fidelity: LoFi", "lo-fi", "'lo-fi' is not a valid name"),
    ("compute config name a keyword", C, "  lofi: {math_fidelity: LoFi", "  class: {math_fidelity: LoFi", "class:", "'class' is not a valid name"),
    ("fidelity unknown", C, "lofi: {math_fidelity: LoFi", "lofi: {math_fidelity: LoFo", "lofi:", "math_fidelity: unknown value 'LoFo'"),
    ("compute flag not a bool", C, "lofi: {math_fidelity: LoFi, math_approx_mode: false", "lofi: {math_fidelity: LoFi, math_approx_mode: 3", "lofi:", "expected true or false"),
    ("weight dtype unknown", P, "w2: bfloat8_b, lm_head: bfloat8_b, embedding: bfloat16, norm: bfloat16}\n    kv_cache: bfloat8_b\n    activations: bfloat16\n    logits: bfloat16",
     "w2: bfloat9_b, lm_head: bfloat8_b, embedding: bfloat16, norm: bfloat16}\n    kv_cache: bfloat8_b\n    activations: bfloat16\n    logits: bfloat16", "bfloat9_b", "unknown value 'bfloat9_b'"),
    ("weight name with a dot", P, "weights: {wqkv: bfloat8_b, wo: bfloat8_b, w1: bfloat8_b", "weights: {wqkv: bfloat8_b, wo.x: bfloat8_b, w1: bfloat8_b", "wo.x", "'wo.x' is not a valid name"),
    ("activations float8", P, "    activations: bfloat16\n    logits: bfloat16\n    fidelity: {li_qkv: hifi2, li_o: hifi2, li_ff1_ff3: hifi2_fp16",
     "    activations: bfloat8_b\n    logits: bfloat16\n    fidelity: {li_qkv: hifi2, li_o: hifi2, li_ff1_ff3: hifi2_fp16", "activations: bfloat8_b", "unknown value 'bfloat8_b'"),
    ("fidelity names an unknown compute config", P, "li_ff2: hifi2_fp16, lm_head: hifi2_na, sdpa_prefill: hifi4, sdpa_decode: hifi2, norm: hifi2}\n  performance",
     "li_ff2: hifi3, lm_head: hifi2_na, sdpa_prefill: hifi4, sdpa_decode: hifi2, norm: hifi2}\n  performance", "  accuracy:", "unknown compute config 'hifi3'"),
    ("preset lacks a key", P, "    kv_cache: bfloat8_b\n    activations: bfloat16\n    logits: bfloat8_b\n", "    kv_cache: bfloat8_b\n    logits: bfloat8_b\n", "  performance:", "missing required key 'activations'"),
    ("compute config defined twice", L, "precision: accuracy", "precision: accuracy\ncompute_configs:\n  lofi: {math_fidelity: LoFi}", "  lofi: {math_fidelity: LoFi}", "compute_configs.lofi: defined twice"),
    # --- patterns
    ("pattern syntax", P, "lookup: embedding(@w_embedding, %tokens)", "lookup: embedding(@w_embedding, %tokens", "%tokens", "patterns.embedding.let.lookup: expected ','"),
    ("pattern unknown op", P, "root: linear(cast(%x), @w_lm_head)", "root: matmul(cast(%x), @w_lm_head)", "matmul(", "unknown op 'matmul'"),
    ("pattern name with a space", P, "  embedding:\n    doc: token", "  \"embed ding\":\n    doc: token", "embed ding", "is not a valid name"),
    ("pattern without root", P, "    root: any(mul(lookup, cast(@embed_scale)), lookup)\n", "", "  embedding:", "missing required key 'root'"),
    ("pattern let not a string", P, "      freqs: mul(cast(@inv_freq), cast(%positions))", "      freqs: 5", "freqs: 5", "expected an expression string"),
    # --- rules
    ("rules missing", L, "rules:\n", "rulez:\n", "rulez:", "unknown key in spec"),
    ("rules empty", L, "overrides: []", "overrides: []\nrules: []", "rules: []", "duplicate key 'rules'"),
    ("a rule that is a string", L, "  - name: tt.embedding\n", "  - tt.embedding\n  - name: tt.embedding0\n", "  - tt.embedding", "each rule must be a mapping"),
    ("rule name with a newline", L, "- name: tt.lm_head", '- name: "tt.lm\\nhead"', '"tt.lm', "is not a valid name"),
    ("duplicate rule name", L, "- name: tt.lm_head", "- name: tt.mlp", "- name: tt.mlp", "duplicate rule name 'tt.mlp'"),
    ("template unknown", L, "template: mlp", "template: mlp_fused", "template: mlp_fused", "rules.tt.mlp.template: unknown value 'mlp_fused'"),
    ("required pattern unknown", L, "require: [gated_mlp]", "require: [geglu]", "require: [geglu]", "unknown pattern 'geglu'"),
    ("predicate unknown", L, "when: [index_math_only]", "when: [is_fast]", "when: [is_fast]", "unknown predicate 'is_fast'"),
    ("modes entry a mapping", L, "require: [{pattern: residual_add, count: 2}]", "require: [{pattern: residual_add, count: 2, modes: [{prefill: 1}]}]", "residual_add", "require.modes: expected a list of prefill, decode"),
    ("module not a glob", L, "match: {module: lm_head, require: [lm_head]}", "match: {module: 5, require: [lm_head]}", "module: 5", "expected a module path glob"),
    ("unknown op weight", L, "ff1: {weight: w1,", "ff1: {weight: w9,", "ff1:", "unknown weight 'w9'"),
    ("op name with a hyphen", L, "      ff3: {weight: w3,", "      ff-3: {weight: w3,", "ff-3", "'ff-3' is not a valid name"),
    ("program kind unknown", L, "prefill: 2d, decode: dram_sharded}}\n      ff3", "prefill: 3d, decode: dram_sharded}}\n      ff3", "ff1:", "unknown program kind '3d'"),
    ("program rows not whole tiles", L, "prefill: 2d, decode: dram_sharded}}\n      ff3", "prefill: {kind: 2d, rows: 7}, decode: dram_sharded}}\n      ff3", "ff1:", "rows: must be a multiple of 32"),
    ("program field unknown", L, "prefill: 2d, decode: dram_sharded}}\n      ff3", "prefill: {kind: 2d, per_core_Q: 2}, decode: dram_sharded}}\n      ff3", "ff1:", "not a field of a 2d program config"),
    ("program field negative", L, "prefill: 2d, decode: dram_sharded}}\n      ff3", "prefill: {kind: 2d, per_core_N: -2}, decode: dram_sharded}}\n      ff3", "ff1:", "expected a positive integer"),
    ("weight name not an identifier", L, "weights: {w1: w_gate, w3: w_up, w13_fused: w_gate_up, w2: w_down}", "weights: {w1: w_gate, w3: w_up, \"w2)\": w_down}", "w_gate", "is not a valid name"),
    ("weights not captures", L, "weights: {w1: w_gate, w3: w_up, w13_fused: w_gate_up, w2: w_down}", "weights: {w1: w_gate, w3: w_up, w2: 5}", "w_gate", "expected a capture name"),
    ("ignore without a reason", L, "    template: mlp\n", "    template: mlp\n    ignore: {x: ''}\n", "{x: ''}", "expected the reason"),
    ("unknown key in a rule", L, "    template: mlp\n", "    template: mlp\n    shards: 8\n", "shards: 8", "unknown key in rule"),
    # --- overrides
    ("override not a mapping", L, "overrides: []", "overrides: [5]", "overrides:", "each override must be a mapping"),
    ("override layers not a list", L, "overrides: []", "overrides: [{layers: 3, weights: {w1: bfloat16}}]", "overrides:", "expected a list of layer indices"),
    ("override dtype unknown", L, "overrides: []", "overrides: [{layers: [0], weights: {w1: float8}}]", "overrides:", "unknown value 'float8'"),
    # --- tests
    ("tests missing a threshold", L, "  top5: 0.95\n", "", "tests:", "missing required key 'top5'"),
    ("pcc above 1", L, "module_pcc: 0.99", "module_pcc: 1.5", "module_pcc", "tests.module_pcc: must be in (0, 1]"),
    ("pcc zero", L, "decode_pcc: 0.98", "decode_pcc: 0", "decode_pcc", "tests.decode_pcc: must be in (0, 1]"),
    ("negative decode steps", L, "decode_steps: 32", "decode_steps: -5", "decode_steps", "tests.decode_steps: must be a positive count"),
    ("zero teacher forcing", L, "teacher_forcing_tokens: 64", "teacher_forcing_tokens: 0", "teacher_forcing_tokens", "must be a positive count"),
    ("top5 above 1", L, "top5: 0.95", "top5: 1.2", "top5", "tests.top5: must be in [0, 1]"),
    ("decode steps a float", L, "decode_steps: 32", "decode_steps: 3.5", "decode_steps", "expected an integer"),
    ("threshold a string", L, "top1: 0.8", "top1: high", "top1", "tests.top1: expected a number"),
]  # fmt: skip


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 60
    assert len({c[0] for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_spec_is_one_line_and_writes_nothing(case, tmp_path, monkeypatch, capsys):
    name, file, old, new, needle, fragment = case
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "specs" / file
    if old is None:
        path.write_bytes(new if isinstance(new, bytes) else new.encode())
    else:
        text = path.read_text()
        assert old in text, old
        path.write_text(text.replace(old, new, 1))
    if isinstance(needle, int):
        line = needle
    else:
        line = [i for i, t in enumerate(path.read_text().splitlines(), 1) if needle in t][-1]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    capsys.readouterr()
    code = main(["emit", "specs/llama.yaml", "--seq-len", "64", "--out", "out/pkg"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert fragment in err[0], err[0]
    where = re.match(r"ttgen: error: ([^:]+):(\d+): ", err[0])
    assert where, f"no file:line in {err[0]!r}"
    assert (where.group(1), int(where.group(2))) == (f"specs/{file}", line), err[0]
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written
