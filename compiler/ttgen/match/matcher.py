"""Rules × graph → matches, with exact coverage.

Each rule names module-path globs (its boundaries) and the patterns that must be found inside.
Module instances are visited from the deepest path up, so a sub-module's rule claims its nodes
before its parent's; a boundary holds the instance's not-yet-claimed call nodes, minus those inside
a descendant that some rule targets (if that rule did not match, they stay uncovered). A rule's
patterns must explain every computing node of its boundary; only data movement and integer/boolean
bookkeeping may be left over. The first rule
(in spec order) whose requirements and predicates hold at an instance claims the whole boundary.
Parameter and buffer inputs belong to the match of their first consumer; graph inputs, the output
and inputs nothing reads are structural. Whatever is left is reported as uncovered."""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import networkx as nx

from ttgen.ir.graph import ordered_nodes
from ttgen.match.engine import find_all
from ttgen.match.predicates import PREDICATES, Candidate
from ttgen.spec.schema import Rule, Spec

__all__ = ["Match", "MatchResult", "capture_name", "capture_reads", "match_graph"]

# (rule, capture) pairs read while a `capture_reads()` block runs: what the planning stages consumed
_READS: contextvars.ContextVar[set | None] = contextvars.ContextVar(
    "ttgen_capture_reads", default=None
)


def capture_name(key: str) -> str:
    """A capture's name without the `.N` suffix of a requirement counted N times."""
    base, _, index = key.rpartition(".")
    return base if base and index.isdigit() else key


@contextlib.contextmanager
def capture_reads() -> Iterator[set[tuple[str, str]]]:
    """Record every capture that code inside the block reads from a Match, as (rule, capture)."""
    reads: set[tuple[str, str]] = set()
    token = _READS.set(reads)
    try:
        yield reads
    finally:
        _READS.reset(token)


_LAYER = re.compile(r"(?:^|\.)(\d+)(?:\.|$)")  # a module list index: the layer of a decoder stack


@dataclass(frozen=True)
class Match:
    rule: str
    template: str
    module: str
    layer: int | None
    nodes: tuple[str, ...]
    captures: tuple[tuple[str, object], ...]

    def __getitem__(self, name: str):
        reads = _READS.get()
        if reads is not None:
            reads.add((self.rule, capture_name(name)))
        for key, value in self.captures:
            if key == name:
                return value
        raise KeyError(f"{self.rule} at {self.module or '<root>'} has no capture '{name}'")

    def get(self, name: str, default=None):
        try:
            return self[name]
        except KeyError:
            return default


@dataclass(frozen=True)
class MatchResult:
    mode: str
    matches: tuple[Match, ...]
    uncovered: tuple[str, ...]
    structural: tuple[str, ...]  # graph inputs, the output, and parameters or buffers nothing reads


def _glob(pattern: str) -> re.Pattern:
    parts = [("[^.]+" if p == "*" else re.escape(p)) for p in pattern.split(".")] if pattern else []
    return re.compile("^" + r"\.".join(parts) + "$")


def _depth(path: str) -> int:
    return 0 if not path else path.count(".") + 1


def _paths(g: nx.DiGraph) -> list[str]:
    seen: dict[str, None] = {"": None}
    for n in ordered_nodes(g):
        for path, _cls in g.nodes[n]["module_stack"]:
            seen.setdefault(path, None)
    return list(seen)


# Ops a rule may leave unexplained inside its boundary: data movement and bookkeeping. Anything
# else must be consumed by one of the rule's patterns, or the rule does not match.
_NEUTRAL = {
    "aten.view.default", "aten.reshape.default", "aten.transpose.int", "aten.unsqueeze.default",
    "aten.expand.default", "aten.contiguous.default", "aten.alias.default", "aten.to.dtype",
    "aten.to.dtype_layout", "aten.to.device", "aten._assert_tensor_metadata.default",
    "aten._assert_scalar.default",
}  # fmt: skip
_INDEX_DTYPES = {"bool", "int64", "int32"}


def neutral(attrs: dict) -> bool:
    """A node a rule may leave unexplained: data movement, bookkeeping, eval-mode dropout, index math."""
    if attrs["op"] in _NEUTRAL:
        return True
    if attrs["op"] == "aten.dropout.default" and attrs["constants"].get("train") is False:
        return True  # the identity in eval mode (traced models are in eval mode)
    return bool(attrs["outputs"]) and all(o["dtype"] in _INDEX_DTYPES for o in attrs["outputs"])


def _try_rule(rule: Rule, spec: Spec, g: nx.DiGraph, mode: str, boundary: list[str]) -> dict | None:
    allowed = set(boundary)
    roots = list(reversed(boundary))
    captures: dict[str, object] = {}
    params: list[str] = []
    consumed: set[str] = set()
    for req in rule.match.require:
        if mode not in req.modes:
            continue
        envs = find_all(spec.pattern(req.pattern).compiled, g, roots, allowed)
        if len(envs) < req.count and not req.optional:
            return None
        for i, env in enumerate(envs[: max(req.count, 1)]):
            suffix = f".{i}" if req.count > 1 else ""
            captures.update({f"{k}{suffix}": v for k, v in env.nodes.items()})
            captures.update({f"{k}{suffix}": v[1] for k, v in env.params.items()})
            captures.update({f"{k}{suffix}": v for k, v in env.consts.items()})
            params.extend(node for node, _ in env.params.values())
            consumed |= env.consumed
    if any(not neutral(g.nodes[n]) for n in boundary if n not in consumed):
        return None  # computation the rule's patterns do not explain
    candidate = Candidate(g, tuple(boundary), captures, frozenset(consumed))
    if not all(PREDICATES[name](candidate) for name in rule.match.when):
        return None
    return {"captures": captures, "params": params}


def match_graph(spec: Spec, g: nx.DiGraph, mode: str) -> MatchResult:
    order = {n: i for i, n in enumerate(ordered_nodes(g))}
    calls = [n for n in ordered_nodes(g) if g.nodes[n]["opcode"] == "call_function"]
    paths = _paths(g)
    visits = []
    for rule_index, rule in enumerate(spec.rules):
        globs = [_glob(m) for m in rule.match.modules]
        for path_index, path in enumerate(paths):
            if any(gl.match(path) for gl in globs):
                visits.append((-_depth(path), path_index, rule_index, path))
    visits.sort()
    targeted = {path for *_, path in visits}

    def inside_other_target(n: str, path: str) -> bool:
        """Whether `n` sits in a descendant module that a rule of its own targets: such nodes
        are that rule's to cover (or to leave uncovered), never the parent's."""
        for q, _cls in g.nodes[n]["module_stack"]:
            if q != path and q in targeted and (not path or q.startswith(path + ".")):
                return True
        return False

    claimed: dict[str, int] = {}
    matches: list[Match] = []
    done_paths: set[str] = set()
    for _, _, rule_index, path in visits:
        if path in done_paths:
            continue
        rule = spec.rules[rule_index]
        boundary = [
            n for n in calls
            if n not in claimed
            and (not path or g.nodes[n]["module"] == path or g.nodes[n]["module"].startswith(path + "."))
            and not inside_other_target(n, path)
        ]  # fmt: skip
        if not boundary:
            continue
        found = _try_rule(rule, spec, g, mode, boundary)
        if found is None:
            continue
        done_paths.add(path)
        for n in boundary:
            claimed[n] = len(matches)
        layer = _LAYER.search(path)
        matches.append(Match(
            rule.name, rule.template, path, int(layer.group(1)) if layer else None, tuple(boundary),
            tuple(sorted(found["captures"].items())),
        ))  # fmt: skip

    # parameters and buffers join the match of their first consumer
    extra: dict[int, list[str]] = defaultdict(list)
    structural, uncovered = [], []
    for n in ordered_nodes(g):
        attrs = g.nodes[n]
        if attrs["opcode"] == "output" or attrs.get("kind") == "user_input":
            structural.append(n)
        elif attrs["opcode"] == "placeholder":
            consumers = sorted(g.successors(n), key=order.get)
            owner = next((claimed[c] for c in consumers if c in claimed), None)
            if not consumers:  # e.g. a tied weight's second name, an unused rope buffer
                structural.append(n)
            elif owner is None:
                uncovered.append(n)
            else:
                extra[owner].append(n)
        elif n not in claimed:
            uncovered.append(n)
    final = tuple(
        Match(
            m.rule,
            m.template,
            m.module,
            m.layer,
            tuple(sorted(m.nodes + tuple(extra[i]), key=order.get)),
            m.captures,
        )
        for i, m in enumerate(matches)
    )
    return MatchResult(mode, final, tuple(uncovered), tuple(structural))
