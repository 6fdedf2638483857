"""Matching: spec rules × traced graph → named-capture matches with exact coverage."""

from ttgen.match.matcher import Match, MatchResult, match_graph

__all__ = ["Match", "MatchResult", "match_graph"]
