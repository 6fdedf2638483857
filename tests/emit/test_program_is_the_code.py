"""What ships is the planned program: every forward method of every emitted module, parsed back
(ast), runs exactly the calls of its program — function, order, positional and keyword arguments,
the names it binds and frees — and each constant it names has the planned value. Prefill methods are
checked once per planned sequence length, following their `if seq_len in TABLE:` guards."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from ttgen.blocks import get_block
from ttgen.emit.emit import render
from ttgen.emit.exprs import const_expr
from ttgen.pipeline import analyze
from ttgen.plan import make_plan
from ttgen.plan.types import Const, Lit, MemCfg, Ref
from ttgen.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
CASES = {
    "tiny (paged, n150)": dict(preset=None, plan={}),
    "tiny (static, p150)": dict(preset=None, plan={"device": "p150"}, kv="static"),
    "llama-3.1-8b at 8192 (row chunks)": dict(preset="llama-3.1-8b", plan={"max_seq_len": 8192, "max_batch": 1}),
    "vit tiny (image classifier)": dict(preset=None, plan={}, spec="vit.yaml", min_calls=20),
    "vit-base on p150, batch 10": dict(preset="vit-base-patch16-224", plan={"device": "p150", "max_batch": 10},
                                       spec="vit.yaml", min_calls=20),
}  # fmt: skip


def _norm(node: ast.AST) -> str:
    return ast.dump(node, annotate_fields=False)


def _expr(code: str) -> str:
    return _norm(ast.parse(code, mode="eval").body)


def _dotted(node: ast.AST) -> str:
    return ast.unparse(node)


def _constants(tree: ast.Module) -> dict[str, ast.AST]:
    return {
        s.targets[0].id: s.value
        for s in tree.body
        if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
    }


def _calls(body: list[ast.stmt], seq_len: int | None, consts: dict[str, ast.AST]):
    """(call node, bound names) in execution order for one sequence length."""
    out = []
    for stmt in body:
        if isinstance(stmt, ast.If):
            test = stmt.test
            assert isinstance(test, ast.Compare) and _dotted(test.left) == "seq_len", ast.unparse(
                test
            )
            table = consts[test.comparators[0].id]
            keys = {k.value for k in table.keys}
            if seq_len in keys:
                out += _calls(stmt.body, seq_len, consts)
            continue
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call):
            (target,) = stmt.targets
            names = [e.id for e in target.elts] if isinstance(target, ast.Tuple) else [target.id]
            out.append((stmt.value, tuple(names)))
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            out.append((stmt.value, ()))
    return out


def _check_arg(node: ast.AST, arg, seq_len, consts, shared, where: str) -> None:
    if isinstance(arg, tuple):
        assert isinstance(node, ast.List) and len(node.elts) == len(arg), where
        for n, a in zip(node.elts, arg, strict=True):
            _check_arg(n, a, seq_len, consts, shared, where)
        return
    if isinstance(arg, Ref):
        assert _dotted(node) == arg.name, f"{where}: reads {_dotted(node)}, planned {arg.name}"
        return
    if isinstance(arg, Lit):
        assert _norm(node) == _expr(arg.code), f"{where}: {ast.unparse(node)} != {arg.code}"
        return
    assert isinstance(arg, Const)
    expected = arg.value if isinstance(arg.value, str) else const_expr(arg.value)
    if isinstance(arg.value, MemCfg) and not arg.value.sharded and not arg.shared:
        assert _norm(node) == _expr(expected), f"{where}: {ast.unparse(node)}"
        return
    if isinstance(node, ast.Subscript):  # NAME[seq_len]: a table keyed by sequence length
        assert _dotted(node.slice) == "seq_len", where
        table = consts[node.value.id]
        entry = dict(zip([k.value for k in table.keys], table.values, strict=True))[seq_len]
        assert _norm(entry) == _expr(expected), (
            f"{where}: {node.value.id}[{seq_len}] is not the planned value"
        )
        return
    assert isinstance(node, ast.Name), f"{where}: {ast.unparse(node)}"
    if arg.shared:
        assert node.id == arg.name, f"{where}: {node.id} for {arg.name}"
        assert _norm(shared[node.id]) == _expr(expected), (
            f"{where}: model_config.{node.id} is not the planned value"
        )
    else:
        assert _norm(consts[node.id]) == _expr(expected), (
            f"{where}: {node.id} is not the planned value"
        )


@pytest.fixture(scope="module", params=list(CASES))
def emitted(request):
    case = CASES[request.param]
    spec = load_spec(ROOT / "specs" / case.get("spec", "llama.yaml"))
    if case.get("kv"):
        import dataclasses

        spec = dataclasses.replace(
            spec, target=dataclasses.replace(spec.target, kv_cache=case["kv"])
        )
    analysis = analyze(spec, preset=case["preset"], seq_len=128)
    plan = make_plan(analysis, **case["plan"])
    files = render(plan)
    return plan, files, case.get("min_calls", 100)


def test_every_forward_method_runs_exactly_its_program(emitted):
    plan, files, min_calls = emitted
    shared = _constants(ast.parse(files["model_config.py"]))
    checked = 0
    for module in plan.modules:
        if not module.signatures:
            continue
        tree = ast.parse(files[get_block(module.template).module])
        consts = _constants(tree)
        wanted = {sig.method for _, sig in module.signatures}
        (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef)
                  and wanted <= {f.name for f in n.body if isinstance(f, ast.FunctionDef)}]  # fmt: skip
        methods = {f.name: f for f in cls.body if isinstance(f, ast.FunctionDef)}
        for mode, sig in module.signatures:
            fn = methods[sig.method]
            assert [a.arg for a in fn.args.args[1:]] == list(sig.params), (
                f"{module.rule} {sig.method}"
            )
            body = [
                s
                for s in fn.body
                if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
            ]
            program = module.program(mode)
            for seq_len in sorted({op.seq_len for op in program}, key=lambda s: s or 0):
                ops = [op for op in program if op.seq_len == seq_len]
                expected = []
                for op in ops:
                    expected.append(op)
                    expected += [("free", n) for n in op.call.frees]
                calls = _calls(body, seq_len, consts)
                where = f"{module.rule} {sig.method}" + (
                    f" at seq_len {seq_len}" if seq_len else ""
                )
                got = [(_dotted(c.func), names) for c, names in calls]
                want = [
                    ("ttnn.deallocate", ()) if isinstance(e, tuple) else (e.call.fn, e.call.outs)
                    for e in expected
                ]
                assert got == want, f"{where}: the code runs {got}, the program {want}"
                for (node, _), e in zip(calls, expected, strict=True):
                    if isinstance(e, tuple):
                        assert [_dotted(a) for a in node.args] == [e[1]], (
                            f"{where}: frees {ast.unparse(node)}"
                        )
                        continue
                    call = e.call
                    here = f"{where} op {e.name}"
                    assert len(node.args) == len(call.args), f"{here}: positional arguments"
                    for n, a in zip(node.args, call.args, strict=True):
                        _check_arg(n, a, seq_len, consts, shared, here)
                    kw = {k.arg: k.value for k in node.keywords}
                    assert list(kw) == [k for k, _ in call.kwargs], f"{here}: keywords {list(kw)}"
                    for k, a in call.kwargs:
                        _check_arg(kw[k], a, seq_len, consts, shared, f"{here} {k}=")
                    checked += 1
    assert checked > min_calls


def test_a_hand_edit_of_the_code_is_caught(emitted):
    """The check above fails when the code and the program disagree (here: one keyword changed)."""
    plan, files, min_calls = emitted
    mlp = files["mlp.py"].replace("dtype=ttnn.bfloat8_b", "dtype=ttnn.bfloat16", 1)
    if mlp == files["mlp.py"]:
        mlp = files["mlp.py"].replace("dtype=ttnn.bfloat16", "dtype=ttnn.bfloat8_b", 1)
    assert mlp != files["mlp.py"]
    with pytest.raises(AssertionError, match="not the planned value|!="):
        test_every_forward_method_runs_exactly_its_program(
            (plan, {**files, "mlp.py": mlp}, min_calls)
        )


HF_NAMES = ("model.layers", "self_attn", "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
            "down_proj", "input_layernorm", "post_attention_layernorm", "embed_tokens", "rotary_emb",
            "model.norm")  # fmt: skip


def test_no_hf_names_in_the_planner_the_emitter_or_the_skeletons():
    """HF parameter names and module paths come from the spec's captures and the trace (the layout),
    never from the core: a family that names its modules otherwise needs no compiler change."""
    core = ROOT / "compiler" / "ttgen"
    found = [
        f"{path.relative_to(core)}:{i}: {name}"
        for folder in ("plan", "emit", "templates", "blocks")
        for path in sorted((core / folder).rglob("*"))
        if path.suffix in (".py", ".j2")
        for i, line in enumerate(path.read_text().splitlines(), 1)
        for name in HF_NAMES
        if re.search(rf"\b{re.escape(name)}\b", line)
    ]
    assert found == []
