"""YAML with locations: `yaml.safe_load` semantics, but mappings and sequences remember the line of
each key and item so errors can say `specs/x.yaml:LINE: key: what is wrong`."""

from __future__ import annotations

from pathlib import Path

import yaml

__all__ = ["LocDict", "LocList", "load_yaml"]


class LocDict(dict):
    """A mapping that knows its own line and the line of each key."""

    file: str = ""
    line: int = 0
    key_lines: dict


class LocList(list):
    file: str = ""
    line: int = 0
    item_lines: list


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LocDict:
    loader.flatten_mapping(node)
    out = LocDict()
    out.file, out.line, out.key_lines = loader.name, node.start_mark.line + 1, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"keys must be strings, got {key!r}", key_node.start_mark
            )
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}'", key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LocList:
    out = LocList(loader.construct_object(child, deep=True) for child in node.value)
    out.file, out.line = loader.name, node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def load_yaml(path: Path, display: str):
    """Parse `path`; `display` is the name used in locations. Raises yaml.YAMLError."""
    text = path.read_text()
    loader = _Loader(text)
    loader.name = display
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
