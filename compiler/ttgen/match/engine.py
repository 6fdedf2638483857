"""Matching one pattern against the graph at a given root node.

Backtracking over commutative operands and `any` alternatives; a binding environment maps let
names and `%` captures to node ids, `@` captures to parameter names, `$` captures to constants.
Op nodes a match consumes must lie in the allowed set (the rule's module boundary)."""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, field

import networkx as nx

from ttgen.match.pattern import Any, Capture, Const, Op, Param, Ref

__all__ = ["Env", "Miss", "Pattern", "find_all", "match_at", "recording_misses"]


@dataclass(frozen=True)
class Pattern:
    name: str
    root: object
    lets: dict = field(default_factory=dict)  # name → expression

    def captures(self) -> set[str]:
        """Every name the pattern captures: %tensors, @parameters and $constants."""
        found: set[str] = set()

        def walk(e) -> None:
            if isinstance(e, (Capture, Param, Const)):
                found.add(e.name)
            elif isinstance(e, Op):
                for a in (*e.args, *(v for _, v in e.kwargs)):
                    walk(a)
            elif isinstance(e, Any):
                for o in e.options:
                    walk(o)

        for e in (self.root, *self.lets.values()):
            walk(e)
        return found


@dataclass
class Env:
    refs: dict = field(default_factory=dict)  # let name → node id
    nodes: dict = field(default_factory=dict)  # %name → node id
    params: dict = field(default_factory=dict)  # @name → (node id, parameter name)
    consts: dict = field(default_factory=dict)  # $name → value
    consumed: set = field(default_factory=set)  # op node ids the match covers

    def copy(self) -> Env:
        return Env(
            dict(self.refs),
            dict(self.nodes),
            dict(self.params),
            dict(self.consts),
            set(self.consumed),
        )


@dataclass(frozen=True)
class Miss:
    """Where a pattern stopped matching: `progress` (the enclosing op patterns that matched and the
    subtrees already matched) says how far it got; the pattern expression
    `expr` (an argument of `parent`, None at the root) did not match graph node `node` (an input of
    `parent_node`), for `reason`."""

    progress: int
    expr: object
    node: str
    reason: str
    parent: object = None
    parent_node: str | None = None


_MISSES: contextvars.ContextVar[list | None] = contextvars.ContextVar("ttgen_misses", default=None)
# (the op pattern whose argument is being matched, its graph node, how many op patterns enclose it)
_PARENT: contextvars.ContextVar[tuple] = contextvars.ContextVar(
    "ttgen_parent", default=(None, None, 0)
)


@contextlib.contextmanager
def recording_misses():
    """Collect a Miss at every point a match fails while the block runs (ttgen check's bring-up
    report); matching itself is unchanged."""
    misses: list[Miss] = []
    token = _MISSES.set(misses)
    try:
        yield misses
    finally:
        _MISSES.reset(token)


def _miss(expr, node: str, env: Env, reason: str) -> list:
    misses = _MISSES.get()
    if misses is not None:
        parent, parent_node, depth = _PARENT.get()
        misses.append(Miss(depth + len(env.consumed), expr, node, reason, parent, parent_node))
    return []


def _const_equal(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_const_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def _match(expr, node: str, env: Env, g: nx.DiGraph, pattern: Pattern, allowed) -> list[Env]:
    attrs = g.nodes[node]
    if isinstance(expr, Capture):
        bound = env.nodes.get(expr.name)
        if bound is not None:
            return [env] if bound == node else []
        env = env.copy()
        env.nodes[expr.name] = node
        return [env]
    if isinstance(expr, Param):
        if attrs["opcode"] != "placeholder" or attrs.get("kind") not in ("parameter", "buffer"):
            return _miss(expr, node, env, "a parameter expected")
        bound = env.params.get(expr.name)
        if bound is not None:
            return [env] if bound[0] == node else []
        env = env.copy()
        env.params[expr.name] = (node, attrs["param"])
        return [env]
    if isinstance(expr, Ref):
        bound = env.refs.get(expr.name)
        if bound is not None:
            return [env] if bound == node else []
        out = []
        for e in _match(pattern.lets[expr.name], node, env, g, pattern, allowed):
            e = e.copy()
            e.refs[expr.name] = node
            out.append(e)
        return out
    if isinstance(expr, Any):
        for option in expr.options:
            found = _match(option, node, env, g, pattern, allowed)
            if found:
                return found
        return []
    assert isinstance(expr, Op)
    if expr.name == "cast":
        out = _match(expr.args[0], node, env, g, pattern, allowed)
        if (
            attrs["opcode"] == "call_function"
            and attrs["op"] in expr.targets
            and node in allowed
            # type_as(a, b) is a cast of a; b only lends its dtype (Gemma's norms)
            and (len(attrs["inputs"]) == 1 or attrs["op"] == "aten.type_as.default")
        ):
            for e in _match(expr, attrs["inputs"][0], env, g, pattern, allowed):
                e = e.copy()
                e.consumed.add(node)
                out.append(e)
        return out
    if attrs["opcode"] != "call_function" or attrs["op"] not in expr.targets:
        return _miss(expr, node, env, "another op")
    if node not in allowed:
        return _miss(expr, node, env, "outside the rule's module")
    env = env.copy()
    for key, want in expr.kwargs:
        if key not in attrs["constants"]:
            return _miss(expr, node, env, f"no constant {key}")
        have = attrs["constants"][key]
        if isinstance(want, Const):
            if want.name in env.consts and not _const_equal(env.consts[want.name], have):
                return _miss(expr, node, env, f"constant {key} differs")
            env.consts[want.name] = have
        elif not _const_equal(want, have):
            return _miss(expr, node, env, f"constant {key}={have!r}, not {want!r}")
    inputs = attrs["inputs"]
    required = [a for a in expr.args if not (isinstance(a, Param) and a.optional)]
    if not (len(required) <= len(inputs) <= len(expr.args)):
        return _miss(expr, node, env, f"{len(inputs)} inputs, not {len(expr.args)}")
    orders = [list(expr.args[: len(inputs)])]
    if expr.commutative:
        orders.append(list(reversed(expr.args[: len(inputs)])))
    results = []
    for order in orders:
        envs = [env]
        for arg, src in zip(order, inputs, strict=True):
            token = _PARENT.set((expr, node, _PARENT.get()[2] + 1))
            try:
                envs = [e2 for e in envs for e2 in _match(arg, src, e, g, pattern, allowed)]
            finally:
                _PARENT.reset(token)
            if not envs:
                break
        for e in envs:
            e.consumed.add(node)
        results.extend(envs)
        if results:
            break
    return results


def match_at(pattern: Pattern, g: nx.DiGraph, node: str, allowed) -> Env | None:
    found = _match(pattern.root, node, Env(), g, pattern, allowed)
    return found[0] if found else None


def find_all(pattern: Pattern, g: nx.DiGraph, candidates: list[str], allowed) -> list[Env]:
    """Matches rooted at each candidate (in order), keeping those that share no op node with an
    earlier one."""
    out, used = [], set()
    for node in candidates:
        env = match_at(pattern, g, node, allowed)
        if env is not None and not (env.consumed & used):
            out.append(env)
            used |= env.consumed
    return out
