"""Runs under the lane's Python 3.12: introspect the installed real ttnn's signatures.

    python oracle_api.py NAMES.json OUT.json

NAMES.json: {"callables": ["ttnn.linear", ...], "enums": ["DataType", ...]}. OUT.json gets, per
callable, {"exists": bool, "overloads": [{"params": [{"name", "kind", "default"?,
"positional_only"?}]}]} in the manifest's format, and per enum its member names. C++ ops are read
from nanobind's `__nb_signature__` of the object behind the FastOperation wrapper (signature text
plus the tuple of real default objects); Python functions and classes by inspect.signature.
"""

import enum
import inspect
import json
import sys

import ttnn


def fmt_default(value) -> str:  # the same formatting as ttgen.emu.conformance.fmt_default
    if isinstance(value, enum.Enum) or type(value).__name__ in _ENUM_TYPES:
        return f"{type(value).__name__}.{getattr(value, 'name', value)}"
    if isinstance(value, (tuple, list)) and not value:
        return "[]"
    text = repr(value)
    if text.startswith("<") and " object at 0x" in text:  # a default-constructed config object
        return f"{type(value).__name__}()"
    return text


_ENUM_TYPES = set()


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif quoted:
            pass
        elif ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _nb_overload(text: str, defaults) -> dict:
    inner = text[text.index("(") + 1 : text.rindex(")")]
    params, kind = [], "positional"
    items = [i.replace("\\*", "*") for i in _split_top(inner)]  # hand-written sigs escape *
    positional_only_upto = items.index("/") if "/" in items else -1
    for i, item in enumerate(items):
        if item == "/":
            continue
        if item == "*":
            kind = "keyword"
            continue
        if item.startswith("*"):
            params.append({"name": item.lstrip("*").split(":")[0], "kind": "var"})
            if not item.startswith("**"):
                kind = "keyword"
            continue
        name = item.split(":")[0].split("=")[0].strip()
        if name == "self":
            continue
        p = {"name": name, "kind": kind}
        if i < positional_only_upto:
            p["positional_only"] = True
        if "=" in item:
            default = item.rsplit("=", 1)[1].strip()
            if default.startswith("\\"):
                default = fmt_default(defaults[int(default[1:])])
            p["default"] = default
        params.append(p)
    return {"params": params}


def _inspect_overload(fn, drop_self: bool) -> dict:
    params = []
    for i, p in enumerate(inspect.signature(fn).parameters.values()):
        if drop_self and i == 0:
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            params.append({"name": p.name, "kind": "var"})
            continue
        entry = {"name": p.name, "kind": "keyword" if p.kind == p.KEYWORD_ONLY else "positional"}
        if p.kind == p.POSITIONAL_ONLY:
            entry["positional_only"] = True
        if p.default is not p.empty:
            entry["default"] = fmt_default(p.default)
        params.append(entry)
    return {"params": params}


def introspect(obj) -> dict:
    is_class = inspect.isclass(obj)
    target = obj.__init__ if is_class else getattr(obj, "function", obj)
    if not is_class and not inspect.isfunction(target) and not hasattr(target, "__nb_signature__"):
        target = type(target).__call__  # a C++ op object: its __call__ carries the signature
    nb = getattr(target, "__nb_signature__", None)
    if nb:
        return {"exists": True, "overloads": [_nb_overload(text, d or ()) for text, _, d in nb]}
    return {"exists": True, "overloads": [_inspect_overload(target, drop_self=is_class)]}


def main(src: str, dst: str) -> None:
    names = json.loads(open(src).read())
    for e in names["enums"]:
        _ENUM_TYPES.add(e)
    out = {"callables": {}, "enums": {}}
    for qualified in names["callables"]:
        obj = ttnn
        try:
            for part in qualified.split(".")[1:]:
                obj = getattr(obj, part)
        except AttributeError:
            out["callables"][qualified] = {"exists": False}
            continue
        try:
            out["callables"][qualified] = introspect(obj)
        except (TypeError, ValueError) as exc:
            out["callables"][qualified] = {"exists": True, "error": str(exc)}
    for e in names["enums"]:
        members = getattr(ttnn, e).__members__
        out["enums"][e] = sorted(members)
    device = ttnn.open_device(device_id=0, num_command_queues=2)
    try:
        out["device_attributes"] = sorted(a for a in dir(device) if not a.startswith("_"))
    finally:
        ttnn.close_device(device)
    with open(dst, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
