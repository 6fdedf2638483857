"""YAML spec → `Spec`. Every problem is one `SpecError` line: `file:LINE: key: what is wrong`.

A spec file may `import` pattern files (relative to itself); imported files may hold `patterns`,
`compute_configs` and `precision_presets` (and imports of their own). Cycles are errors."""

from __future__ import annotations

import hashlib
import keyword
import re
from pathlib import Path

import yaml

from ttgen.errors import TtgenError
from ttgen.spec.schema import (
    ACTIVATION_LAYOUTS,
    DTYPES,
    FIDELITIES,
    KIND_ACTIVATIONS,
    KIND_TARGET,
    KIND_TESTS,
    KV_CACHE_KINDS,
    PROGRAM_FIELDS,
    PROGRAM_KINDS,
    ComputeConfigSpec,
    Loc,
    MatchSpec,
    OpSpec,
    Override,
    PatternSpec,
    PrecisionSpec,
    ProgramChoice,
    Requirement,
    Rule,
    Spec,
    Target,
    Thresholds,
)
from ttgen.spec.yamlloc import LocDict, LocList, YamlInputError, load_yaml

__all__ = ["SpecError", "load_spec"]

MAX_BATCH = 32  # decode ops hold one user per tile row
SEQ_LEN_MULTIPLE = 128  # max_seq_len is whole prefill chunks


class SpecError(TtgenError):
    """A spec that is not valid; the message starts with file:line."""


def _fail(where: Loc, key: str, what: str):
    raise SpecError(f"{where}: {key}: {what}")


def _loc(node, key: str | None = None) -> Loc:
    if isinstance(node, LocDict) and key is not None and key in node.key_lines:
        return Loc(node.file, node.key_lines[key])
    return Loc(getattr(node, "file", "?"), getattr(node, "line", 0))


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    LocDict: "a mapping",
    LocList: "a list",
}


def _get(
    node: LocDict, key: str, kind, *, required: bool = True, default=None, where: str | None = None
):
    if key not in node:
        if required:  # named at the `name:` that opens the mapping
            at = Loc(node.file, node.key_line) if getattr(node, "key_line", 0) else _loc(node)
            _fail(at, where or key, f"missing required key '{key}'")
        return default
    value = node[key]
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok, value = True, float(value)
    if not ok:
        _fail(
            _loc(node, key),
            where or key,
            f"expected {_TYPE_NAMES.get(kind, kind.__name__)}, got {type(value).__name__} {value!r}",
        )
    return value


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _name(node: LocDict, name, what: str, pattern=_IDENTIFIER, key: str | None = None) -> str:
    """A name the spec defines and generated code may spell (a constant, a field, a key): a plain
    identifier, so no spec string can put anything else into generated code."""
    if not isinstance(name, str) or not pattern.fullmatch(name) or keyword.iskeyword(name):
        _fail(_loc(node, key or (name if isinstance(name, str) else None)), what,
              f"{name!r} is not a valid name (letters, digits and _, not starting with a digit)")  # fmt: skip
    return name


def _keys(node, allowed: tuple[str, ...], what: str) -> None:
    if not isinstance(node, LocDict):
        _fail(_loc(node), what, f"expected a mapping, got {type(node).__name__}")
    for key in node:
        if key not in allowed:
            _fail(_loc(node, key), key, f"unknown key in {what} (allowed: {', '.join(allowed)})")


def _one_of(node: LocDict, key: str, value, allowed, what: str | None = None) -> None:
    if value not in allowed:
        _fail(
            _loc(node, key),
            what or key,
            f"unknown value '{value}' (known: {', '.join(map(str, allowed))})",
        )


def _str_map(
    node: LocDict, key: str, allowed_values=None, value_kind=str
) -> tuple[tuple[str, object], ...]:
    m = _get(node, key, LocDict, required=False, default=LocDict())
    out = []
    for k, v in m.items():
        _name(m, k, f"{key}.{k}")
        if not isinstance(v, value_kind) or isinstance(v, bool) and value_kind is not bool:
            _fail(
                _loc(m, k),
                f"{key}.{k}",
                f"expected {_TYPE_NAMES.get(value_kind, value_kind.__name__)}, got {v!r}",
            )
        if allowed_values is not None and v not in allowed_values:
            _fail(
                _loc(m, k),
                f"{key}.{k}",
                f"unknown value '{v}' (known: {', '.join(allowed_values)})",
            )
        out.append((k, v))
    return tuple(out)


# --------------------------------------------------------------------------- pieces


def _patterns(node: LocDict) -> list[PatternSpec]:
    from ttgen.match.engine import Pattern
    from ttgen.match.pattern import PatternError, parse

    out = []
    for name, body in node.items():
        _name(node, name, f"patterns.{name}")
        where = _loc(node, name)
        if isinstance(body, str):
            body = LocDict({"root": body})
            body.file, body.line, body.key_lines = where.file, where.line, {"root": where.line}
        _keys(body, ("doc", "let", "root"), f"pattern {name}")
        lets_node = _get(body, "let", LocDict, required=False, default=LocDict())
        lets: dict[str, object] = {}
        for let_name, text in lets_node.items():
            let_loc = _loc(lets_node, let_name)
            if not isinstance(text, str):
                _fail(let_loc, f"patterns.{name}.let.{let_name}", "expected an expression string")
            try:
                lets[let_name] = parse(text, set(lets_node))
            except PatternError as exc:
                _fail(let_loc, f"patterns.{name}.let.{let_name}", str(exc))
        root_text = _get(body, "root", str, where=f"patterns.{name}.root")
        try:
            root = parse(root_text, set(lets_node))
        except PatternError as exc:
            _fail(_loc(body, "root"), f"patterns.{name}.root", str(exc))
        out.append(PatternSpec(name, root_text, tuple((k, v) for k, v in lets_node.items()), body.get("doc", ""), where,
                               compiled=Pattern(name, root, lets)))  # fmt: skip
    return out


def _compute_configs(node: LocDict) -> list[ComputeConfigSpec]:
    out = []
    for name, body in node.items():
        _name(node, name, f"compute_configs.{name}")
        _keys(
            body,
            ("math_fidelity", "math_approx_mode", "fp32_dest_acc_en", "packer_l1_acc"),
            f"compute config {name}",
        )
        fidelity = _get(body, "math_fidelity", str)
        _one_of(
            body, "math_fidelity", fidelity, FIDELITIES, f"compute_configs.{name}.math_fidelity"
        )
        out.append(ComputeConfigSpec(
            name, fidelity, _get(body, "math_approx_mode", bool, required=False, default=False),
            _get(body, "fp32_dest_acc_en", bool, required=False, default=False),
            _get(body, "packer_l1_acc", bool, required=False, default=False), _loc(node, name),
        ))  # fmt: skip
    return out


def _precisions(
    node: LocDict, activations: tuple[str, ...] = ("bfloat16", "float32")
) -> list[PrecisionSpec]:
    out = []
    for name, body in node.items():
        _name(node, name, f"precision_presets.{name}")
        _keys(
            body,
            ("weights", "kv_cache", "activations", "logits", "mlp_gate", "fidelity"),
            f"precision preset {name}",
        )
        # optional here: a model kind with a KV cache needs it, and its planner says so
        kv = _get(body, "kv_cache", str, required=False)
        if kv is not None:
            _one_of(body, "kv_cache", kv, DTYPES, f"precision_presets.{name}.kv_cache")
        act = _get(body, "activations", str)
        _one_of(
            body,
            "activations",
            act,
            activations,
            f"precision_presets.{name}.activations",
        )
        logits = _get(body, "logits", str)
        _one_of(body, "logits", logits, DTYPES, f"precision_presets.{name}.logits")
        gate = _get(body, "mlp_gate", str, required=False, default="bfloat8_b")
        _one_of(body, "mlp_gate", gate, DTYPES, f"precision_presets.{name}.mlp_gate")
        out.append(
            PrecisionSpec(
                name,
                _str_map(body, "weights", DTYPES),
                kv,
                act,
                logits,
                _str_map(body, "fidelity"),
                _loc(node, name),
                gate,
            )
        )
    return out


def _program(node, where: Loc, key: str) -> ProgramChoice:
    if isinstance(node, str):
        if node not in PROGRAM_KINDS:
            _fail(where, key, f"unknown program kind '{node}' (known: {', '.join(PROGRAM_KINDS)})")
        return ProgramChoice(node)
    if not isinstance(node, LocDict):
        _fail(where, key, "expected a program kind or a mapping with `kind`")
    kind = _get(node, "kind", str, where=f"{key}.kind")
    _one_of(node, "kind", kind, PROGRAM_KINDS, f"{key}.kind")
    fields = []
    for k, v in node.items():
        if k == "kind":
            continue
        if k not in PROGRAM_FIELDS[kind]:
            known = ", ".join(PROGRAM_FIELDS[kind]) or "none"
            _fail(
                _loc(node, k),
                f"{key}.{k}",
                f"not a field of a {kind} program config (fields: {known})",
            )
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            _fail(_loc(node, k), f"{key}.{k}", f"expected a positive integer, got {v!r}")
        if k == "rows" and v % 32:
            _fail(
                _loc(node, k), f"{key}.{k}", f"must be a multiple of 32 (whole tile rows), got {v}"
            )
        fields.append((k, v))
    return ProgramChoice(kind, tuple(fields))


def _per_mode(node: LocDict, key: str, parse_value, modes: tuple[str, ...]):
    """`key: value` for every mode, or `key: {prefill: value, decode: value}` (the model kind's)."""
    if key not in node:
        return ()
    value = node[key]
    where = _loc(node, key)
    if isinstance(value, LocDict) and set(value) <= set(modes) and value:
        return tuple(
            (m, parse_value(value[m], _loc(value, m), f"{key}.{m}")) for m in modes if m in value
        )
    return tuple((m, parse_value(value, where, key)) for m in modes)


def _rule(node: LocDict, patterns: dict, predicates, kind_modes: tuple[str, ...]) -> Rule:
    _keys(node, ("name", "match", "when", "template", "weights", "ops", "ignore"), "rule")
    name = _name(node, _get(node, "name", str), "rules.name", _RULE_NAME, key="name")
    where = _loc(node)
    match = _get(node, "match", LocDict)
    _keys(match, ("module", "require"), f"rule {name} match")
    modules = match.get("module")
    if isinstance(modules, str):
        modules = [modules]
    if not isinstance(modules, list) or not modules or not all(isinstance(m, str) for m in modules):
        _fail(
            _loc(match, "module") if "module" in match else _loc(match),
            f"rules.{name}.match.module",
            "expected a module path glob or a list of them",
        )
    requires = []
    req_list = _get(match, "require", LocList, required=False, default=LocList())
    for i, item in enumerate(req_list):
        item_loc = Loc(req_list.file, req_list.item_lines[i])
        if isinstance(item, str):
            item = LocDict({"pattern": item})
            item.file, item.line, item.key_lines = (
                item_loc.file,
                item_loc.line,
                {"pattern": item_loc.line},
            )
        _keys(item, ("pattern", "count", "modes", "optional"), f"rule {name} requirement")
        pname = _get(item, "pattern", str, where=f"rules.{name}.match.require.pattern")
        if pname not in patterns:
            _fail(
                _loc(item, "pattern"),
                f"rules.{name}.match.require",
                f"unknown pattern '{pname}' (known: {', '.join(sorted(patterns))})",
            )
        count = _get(item, "count", int, required=False, default=1)
        modes = item.get("modes", list(kind_modes))
        if not isinstance(modes, list) or not all(
            isinstance(m, str) and m in kind_modes for m in modes
        ):
            _fail(
                _loc(item, "modes"),
                f"rules.{name}.match.require.modes",
                f"expected a list of {', '.join(kind_modes)}",
            )
        requires.append(
            Requirement(
                pname,
                count,
                tuple(modes),
                _get(item, "optional", bool, required=False, default=False),
                item_loc,
            )
        )
    when = node.get("when", [])
    if not isinstance(when, list) or not all(isinstance(w, str) for w in when):
        _fail(_loc(node, "when"), f"rules.{name}.when", "expected a list of predicate names")
    for w in when:
        if w not in predicates:
            _fail(
                _loc(node, "when"),
                f"rules.{name}.when",
                f"unknown predicate '{w}' (known: {', '.join(sorted(predicates))})",
            )
    template = _get(node, "template", str)
    from ttgen.blocks import BLOCKS

    _one_of(node, "template", template, tuple(sorted(BLOCKS)), f"rules.{name}.template")
    captured = set().union(*(patterns[r.pattern].compiled.captures() for r in requires))
    weights = []
    wnode = _get(node, "weights", LocDict, required=False, default=LocDict())
    for wname, src in wnode.items():
        _name(wnode, wname, f"rules.{name}.weights.{wname}")
        src = [src] if isinstance(src, str) else src
        if not isinstance(src, list) or not src or not all(isinstance(s, str) for s in src):
            _fail(
                _loc(wnode, wname),
                f"rules.{name}.weights.{wname}",
                "expected a capture name or a list of them (fused)",
            )
        for cap in src:
            if cap not in captured:
                _fail(_loc(wnode, wname), f"rules.{name}.weights.{wname}",
                      f"'{cap}' is not a capture of this rule's patterns (they capture: "
                      f"{', '.join(sorted(captured)) or 'nothing'})")  # fmt: skip
        weights.append((wname, tuple(src)))
    ops = []
    onode = _get(node, "ops", LocDict, required=False, default=LocDict())
    for oname, body in onode.items():
        _name(onode, oname, f"rules.{name}.ops.{oname}")
        _keys(body, ("weight", "fidelity", "program"), f"rule {name} op {oname}")
        weight = _get(body, "weight", str, required=False)
        if weight is not None and weight not in dict(weights):
            _fail(
                _loc(body, "weight"),
                f"rules.{name}.ops.{oname}.weight",
                f"unknown weight '{weight}' (this rule's weights: {', '.join(dict(weights)) or 'none'})",
            )

        def _fid(value, loc, key, oname=oname):
            if not isinstance(value, str):
                _fail(loc, f"rules.{name}.ops.{oname}.{key}", "expected a fidelity key name")
            return value

        def _prog(value, loc, key, oname=oname):
            return _program(value, loc, f"rules.{name}.ops.{oname}.{key}")

        ops.append(
            OpSpec(
                oname,
                weight,
                _per_mode(body, "fidelity", _fid, kind_modes),
                _per_mode(body, "program", _prog, kind_modes),
                _loc(onode, oname),
            )
        )
    ignore = []
    inode = _get(node, "ignore", LocDict, required=False, default=LocDict())
    for cname, reason in inode.items():
        if cname not in captured:
            _fail(_loc(inode, cname), f"rules.{name}.ignore.{cname}",
                  f"'{cname}' is not a capture of this rule's patterns")  # fmt: skip
        if not isinstance(reason, str) or not reason.strip():
            _fail(_loc(inode, cname), f"rules.{name}.ignore.{cname}",
                  "expected the reason the generated code need not use this capture")  # fmt: skip
        ignore.append((cname, reason.strip()))
    return Rule(
        name,
        MatchSpec(tuple(modules), tuple(requires), tuple(when), _loc(node, "match")),
        template,
        tuple(weights),
        tuple(ops),
        where,
        tuple(ignore),
    )


# --------------------------------------------------------------------------- files


def _read(path: Path, display: str):
    try:
        data = load_yaml(path, display)
    except FileNotFoundError:
        raise SpecError(f"{display}: no such spec file") from None
    except IsADirectoryError:
        raise SpecError(f"{display}: is a folder, not a spec file") from None
    except PermissionError:
        raise SpecError(f"{display}: not readable (permission denied)") from None
    except YamlInputError as exc:
        raise SpecError(f"{display}:{exc.line}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark else 0
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{display}:{line}: yaml: {problem}") from None
    if not isinstance(data, LocDict):
        raise SpecError(f"{display}:1: spec: expected a mapping at the top level")
    return data


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


IMPORT_SUFFIXES = (".yaml", ".yml")


def _collect(
    path: Path, stack: tuple[Path, ...], acc: dict, hasher, root: Path, seen: dict
) -> LocDict:
    """Load `path` and its imports depth-first, merging shared sections into `acc`. Imports are
    `.yaml` files inside `root` (the folder of the spec given on the command line) and its
    subfolders: a spec cannot make ttgen read anything else on disk."""
    display = _display(path)
    data = _read(path, display)
    hasher.update(display.encode() + b"\0" + path.read_bytes())
    imports = _get(data, "imports", LocList, required=False, default=LocList())
    for i, rel in enumerate(imports):
        where = Loc(display, imports.item_lines[i])
        if not isinstance(rel, str) or not rel:
            _fail(where, "imports", f"expected a file path, got {rel!r}")
        target = (path.parent / rel).resolve()
        if not target.is_relative_to(root):
            _fail(where, "imports", f"'{rel}' is outside the spec's folder {_display(root)}")
        if target.suffix not in IMPORT_SUFFIXES:
            _fail(where, "imports", f"'{rel}' is not a .yaml file")
        if target in stack:
            chain = " -> ".join(_display(p) for p in (*stack, target))
            _fail(where, "imports", f"cyclic import: {chain}")
        if target in seen:
            _fail(where, "imports", f"'{rel}' is already imported (at {seen[target]})")
        if not target.is_file():
            _fail(where, "imports", f"no such file '{rel}'")
        seen[target] = where
        imported = _collect(target, (*stack, target), acc, hasher, root, seen)
        _keys(
            imported,
            ("imports", "patterns", "compute_configs", "precision_presets"),
            f"imported file {rel}",
        )
    for section in ("patterns", "compute_configs", "precision_presets"):
        body = _get(data, section, LocDict, required=False, default=LocDict())
        for name in body:
            if name in acc[section]:
                _fail(
                    _loc(body, name),
                    f"{section}.{name}",
                    f"defined twice (also at {acc[section][name][1]})",
                )
            acc[section][name] = (body, _loc(body, name))
    return data


def load_spec(path: str | Path, predicates=None) -> Spec:
    """Load and validate a spec. `predicates` (name → function) defaults to ttgen.match's."""
    from ttgen.devices import device_names

    if predicates is None:
        from ttgen.match.predicates import PREDICATES as predicates
    path = Path(path)
    hasher = hashlib.sha256()
    acc: dict = {"patterns": {}, "compute_configs": {}, "precision_presets": {}}
    data = _collect(path.resolve(), (path.resolve(),), acc, hasher, path.resolve().parent, {})
    _keys(data, ("family", "model", "imports", "target", "precision", "precision_presets", "compute_configs",
                 "patterns", "rules", "overrides", "tests"), "spec")  # fmt: skip
    family = _get(data, "family", str)
    from ttgen.models.registry import FAMILIES

    _one_of(data, "family", family, tuple(sorted(FAMILIES)), "family")
    from ttgen.models.kinds import KIND_MODES, modes_of

    model_kind = _get(data, "model", str, required=False, default="causal_lm")
    _one_of(data, "model", model_kind, tuple(KIND_MODES), "model")

    def section(name, parse):
        merged = LocDict()
        for key, (body, _where) in acc[name].items():
            one = LocDict({key: body[key]})
            one.file, one.line, one.key_lines = body.file, body.line, {key: body.key_lines[key]}
            merged.update({key: parse(one)[0]})
        return merged

    patterns = section("patterns", _patterns)
    computes = section("compute_configs", _compute_configs)
    precisions = section(
        "precision_presets", lambda n: _precisions(n, KIND_ACTIVATIONS[model_kind])
    )
    for p in precisions.values():
        for key, cname in p.fidelity:
            if cname not in computes:
                _fail(
                    p.loc,
                    f"precision_presets.{p.name}.fidelity.{key}",
                    f"unknown compute config '{cname}' (known: {', '.join(computes)})",
                )

    tnode = _get(data, "target", LocDict)
    _keys(tnode, KIND_TARGET[model_kind], "target")
    device = _get(tnode, "device", str, where="target.device")
    _one_of(tnode, "device", device, device_names(), "target.device")
    max_batch = _get(tnode, "max_batch", int, where="target.max_batch")
    if not 1 <= max_batch <= MAX_BATCH:
        _fail(
            _loc(tnode, "max_batch"),
            "target.max_batch",
            f"must be between 1 and {MAX_BATCH}, got {max_batch}",
        )
    max_seq, kind, block = 0, None, 32
    if "max_seq_len" in KIND_TARGET[model_kind]:
        max_seq = _get(tnode, "max_seq_len", int, where="target.max_seq_len")
        if max_seq <= 0 or max_seq % SEQ_LEN_MULTIPLE:
            _fail(
                _loc(tnode, "max_seq_len"),
                "target.max_seq_len",
                f"must be a positive multiple of {SEQ_LEN_MULTIPLE}, got {max_seq}",
            )
        kv = _get(tnode, "kv_cache", LocDict, where="target.kv_cache")
        _keys(kv, ("kind", "block_size"), "target.kv_cache")
        kind = _get(kv, "kind", str, where="target.kv_cache.kind")
        _one_of(kv, "kind", kind, KV_CACHE_KINDS, "target.kv_cache.kind")
        block = _get(
            kv, "block_size", int, required=False, default=32, where="target.kv_cache.block_size"
        )
        if block % 32 or block <= 0 or max_seq % block:
            _fail(_loc(kv, "block_size") if "block_size" in kv else _loc(kv), "target.kv_cache.block_size",
                  f"must be a positive multiple of 32 dividing max_seq_len {max_seq}, got {block}")  # fmt: skip
    activations = "sharded"
    if "activations" in KIND_TARGET[model_kind]:
        activations = _get(tnode, "activations", str, required=False, default="sharded",
                           where="target.activations")  # fmt: skip
        _one_of(tnode, "activations", activations, ACTIVATION_LAYOUTS, "target.activations")
    target = Target(device, max_batch, max_seq, kind, block, _loc(data, "target"), activations)

    precision = _get(data, "precision", str)
    _one_of(data, "precision", precision, list(precisions), "precision")

    rules, seen = [], {}
    rnodes = _get(data, "rules", LocList)
    if not rnodes:
        _fail(_loc(data, "rules"), "rules", "expected at least one rule")
    for i, rnode in enumerate(rnodes):
        if not isinstance(rnode, LocDict):
            _fail(Loc(rnodes.file, rnodes.item_lines[i]), "rules", "each rule must be a mapping")
        rule = _rule(rnode, patterns, predicates, modes_of(model_kind))
        if rule.name in seen:
            _fail(
                rule.loc,
                "rules.name",
                f"duplicate rule name '{rule.name}' (first at {seen[rule.name]})",
            )
        seen[rule.name] = rule.loc
        rules.append(rule)

    overrides = []
    onodes = _get(data, "overrides", LocList, required=False, default=LocList())
    for i, onode in enumerate(onodes):
        if not isinstance(onode, LocDict):
            _fail(Loc(onodes.file, onodes.item_lines[i]), "overrides",
                  f"each override must be a mapping with layers and weights, got {onode!r}")  # fmt: skip
        _keys(onode, ("layers", "weights", "fidelity"), "override")
        layers = onode.get("layers")
        if (
            not isinstance(layers, list)
            or not layers
            or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in layers)
        ):
            _fail(
                Loc(onodes.file, onodes.item_lines[i]),
                "overrides.layers",
                "expected a list of layer indices",
            )
        ov = Override(
            tuple(layers),
            _str_map(onode, "weights", DTYPES),
            _str_map(onode, "fidelity"),
            Loc(onodes.file, onodes.item_lines[i]),
        )
        for key, cname in ov.fidelity:
            if cname not in computes:
                _fail(ov.loc, f"overrides.fidelity.{key}", f"unknown compute config '{cname}'")
        overrides.append(ov)

    tests = _get(data, "tests", LocDict)
    fields = KIND_TESTS[model_kind]
    _keys(tests, tuple(fields), "tests")
    values = {k: _get(tests, k, t, where=f"tests.{k}") for k, t in fields.items()}
    for k, v in values.items():
        if k.endswith("_pcc") and not 0.0 < v <= 1.0:
            _fail(_loc(tests, k), f"tests.{k}", f"must be in (0, 1], got {v}")
        if k in ("top1", "top5") and not 0.0 <= v <= 1.0:  # fractions of tokens or images
            _fail(_loc(tests, k), f"tests.{k}", f"must be in [0, 1], got {v}")
        if fields[k] is int and v <= 0:  # a count of 0 would make a test vacuous
            _fail(_loc(tests, k), f"tests.{k}", f"must be a positive count, got {v}")

    return Spec(
        path=_display(path), sha256=hasher.hexdigest(), family=family, target=target, precision=precision,
        precision_presets=tuple(precisions.values()), compute_configs=tuple(computes.values()),
        patterns=tuple(patterns.values()), rules=tuple(rules), overrides=tuple(overrides), tests=Thresholds(**values),
        model_kind=model_kind,
    )  # fmt: skip
