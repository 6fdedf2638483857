"""Specs: YAML → frozen dataclasses carrying file:line; unknown keys and names rejected."""

from ttgen.spec.load import SpecError, load_spec
from ttgen.spec.schema import Spec

__all__ = ["Spec", "SpecError", "load_spec"]
