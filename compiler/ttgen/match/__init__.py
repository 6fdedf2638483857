"""Matching: spec rules × traced graph → named-capture matches with exact coverage."""

from ttgen.match.matcher import Match, MatchResult, capture_name, capture_reads, match_graph

__all__ = ["Match", "MatchResult", "capture_name", "capture_reads", "match_graph"]
