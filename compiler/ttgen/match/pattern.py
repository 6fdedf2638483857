"""The pattern language: op DAGs over the traced aten graph, with named captures.

A pattern is an expression; `let` bindings name shared sub-expressions (a name used twice must
match the same node, which is how a DAG is written):

    op(arg, ..., key=value)   an aten op: a short name from OPS or a full target (aten.x.overload);
                              positional args match the node's tensor inputs in order, keyword
                              args its constants; `mul` and `add` also match with swapped inputs
    %name                     any tensor; captured by name (the same name must be the same node)
    @name                     a parameter or buffer input; captures its name
    @name?                    an optional trailing parameter (e.g. a bias)
    $name                     (as a keyword value) captures a constant
    cast(e)                   e behind zero or more value-preserving casts/aliases
    any(e1, e2, ...)          the first alternative that matches
    name                      a `let` binding

Literals: integers, floats, true, false, null, [lists].
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["OPS", "Any", "Capture", "Const", "Op", "Param", "PatternError", "Ref", "parse"]

# Short op names → aten targets.
OPS: dict[str, tuple[str, ...]] = {
    "add": ("aten.add.Tensor",),
    "sub": ("aten.sub.Tensor",),
    "mul": ("aten.mul.Tensor",),
    "div": ("aten.div.Tensor",),
    "neg": ("aten.neg.default",),
    "pow": ("aten.pow.Tensor_Scalar",),
    "mean": ("aten.mean.dim",),
    "rsqrt": ("aten.rsqrt.default",),
    "silu": ("aten.silu.default",),
    "cos": ("aten.cos.default",),
    "sin": ("aten.sin.default",),
    "linear": ("aten.linear.default",),
    "embedding": ("aten.embedding.default",),
    "view": ("aten.view.default",),
    "reshape": ("aten.reshape.default",),
    "transpose": ("aten.transpose.int",),
    "unsqueeze": ("aten.unsqueeze.default",),
    "expand": ("aten.expand.default",),
    "slice": ("aten.slice.Tensor",),
    "cat": ("aten.cat.default",),
    "gt": ("aten.gt.Tensor",),
    "sdpa": ("aten.scaled_dot_product_attention.default",),
    "index_copy": ("aten.index_copy_.default", "aten.index_copy.default"),
    "layer_norm": ("aten.layer_norm.default",),
    "gelu": ("aten.gelu.default",),
    "conv2d": ("aten.conv2d.default",),
    "flatten": ("aten.flatten.using_ints",),
    "select": ("aten.select.int",),
    "chunk": ("aten.chunk.default",),
    "getitem": ("getitem",),
}
COMMUTATIVE = {"add", "mul"}
CASTS = (
    "aten.to.dtype",
    "aten.to.dtype_layout",
    "aten.to.device",
    "aten._to_copy.default",
    "aten.type_as.default",
    "aten.alias.default",
    "aten.contiguous.default",
)


class PatternError(ValueError):
    """A pattern that does not parse or names an unknown op."""


@dataclass(frozen=True)
class Capture:
    name: str


@dataclass(frozen=True)
class Param:
    name: str
    optional: bool = False


@dataclass(frozen=True)
class Const:
    name: str


@dataclass(frozen=True)
class Ref:
    name: str


@dataclass(frozen=True)
class Op:
    name: str  # short name or full target; "cast" is transparent
    targets: tuple[str, ...]
    args: tuple
    kwargs: tuple[tuple[str, object], ...]  # value: literal or Const
    commutative: bool = False


@dataclass(frozen=True)
class Any:
    options: tuple


_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+\.\d*(?:e-?\d+)?|-?\d+e-?\d+|-?\d+)|(?P<sig>[%@$])(?P<cap>[A-Za-z_]\w*)(?P<opt>\?)?"
    r"|(?P<name>[A-Za-z_][\w.]*)|(?P<punct>[(),=\[\]]))"
)


def _tokens(text: str) -> list[tuple[str, str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise PatternError(f"cannot parse pattern at '{text[pos : pos + 20]}'")
        pos = m.end()
        if m.group("num") is not None:
            out.append(("num", m.group("num"), ""))
        elif m.group("sig"):
            out.append((m.group("sig"), m.group("cap"), m.group("opt") or ""))
        elif m.group("name"):
            out.append(("name", m.group("name"), ""))
        else:
            out.append(("punct", m.group("punct"), ""))
    return out


class _Parser:
    def __init__(self, text: str, lets: set[str]):
        self.toks = _tokens(text)
        self.i = 0
        self.lets = lets

    def peek(self, value: str | None = None):
        tok = self.toks[self.i] if self.i < len(self.toks) else ("end", "", "")
        return tok if value is None else tok[1] == value and tok[0] == "punct"

    def take(self, value: str | None = None):
        tok = self.peek()
        if value is not None and not (tok[0] == "punct" and tok[1] == value):
            raise PatternError(f"expected '{value}' but found '{tok[1] or 'end of pattern'}'")
        self.i += 1
        return tok

    def literal(self):
        kind, text, _ = self.take()
        if kind == "num":
            return float(text) if any(c in text for c in ".e") else int(text)
        if kind == "name" and text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text]
        if kind == "$":
            return Const(text)
        if kind == "punct" and text == "[":
            items = []
            while not self.peek("]"):
                items.append(self.literal())
                if not self.peek("]"):
                    self.take(",")
            self.take("]")
            return items
        raise PatternError(f"expected a literal, found '{text}'")

    def expr(self):
        kind, text, opt = self.take()
        if kind == "%":
            return Capture(text)
        if kind == "@":
            return Param(text, optional=bool(opt))
        if kind != "name":
            raise PatternError(f"unexpected '{text or 'end of pattern'}'")
        if not self.peek("("):
            if text not in self.lets:
                raise PatternError(
                    f"unknown name '{text}' (not a let binding; ops need parentheses)"
                )
            return Ref(text)
        self.take("(")
        args, kwargs = [], []
        while not self.peek(")"):
            kind2, text2, _ = self.peek()
            nxt = self.toks[self.i + 1] if self.i + 1 < len(self.toks) else ("end", "", "")
            if kind2 == "name" and nxt[0] == "punct" and nxt[1] == "=":
                self.take()
                self.take("=")
                kwargs.append((text2, self.literal()))
            else:
                args.append(self.expr())
            if not self.peek(")"):
                self.take(",")
        self.take(")")
        if text == "any":
            if kwargs or len(args) < 2:
                raise PatternError("any(...) takes two or more alternatives and no keywords")
            return Any(tuple(args))
        if text == "cast":
            if kwargs or len(args) != 1:
                raise PatternError("cast(...) takes exactly one argument")
            return Op("cast", CASTS, tuple(args), ())
        if text in OPS:
            targets = OPS[text]
        elif text.startswith("aten."):
            targets = (text,)
        else:
            raise PatternError(
                f"unknown op '{text}' (known: {', '.join(sorted(OPS))}, or a full aten target)"
            )
        optional = [isinstance(a, Param) and a.optional for a in args]
        if any(optional) and optional != sorted(optional):
            raise PatternError(f"{text}(...): optional parameters must come last")
        return Op(
            text,
            targets,
            tuple(args),
            tuple(kwargs),
            commutative=text in COMMUTATIVE and len(args) == 2,
        )


def parse(text: str, lets: set[str] = frozenset()):
    """Parse one pattern expression; `lets` are the binding names it may reference."""
    if not isinstance(text, str) or not text.strip():
        raise PatternError("a pattern must be a non-empty expression string")
    parser = _Parser(text, set(lets))
    out = parser.expr()
    if parser.i != len(parser.toks):
        raise PatternError(f"unexpected '{parser.toks[parser.i][1]}' after the pattern")
    return out
