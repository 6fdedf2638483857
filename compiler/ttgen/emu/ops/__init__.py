"""Emulated TTNN operations."""
