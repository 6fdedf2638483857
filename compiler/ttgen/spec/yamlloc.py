"""YAML with locations: `yaml.safe_load` semantics, but mappings and sequences remember the line of
each key and item so errors can say `specs/x.yaml:LINE: key: what is wrong`."""

from __future__ import annotations

from pathlib import Path

import yaml

__all__ = ["MAX_BYTES", "LocDict", "LocList", "YamlInputError", "load_yaml"]


class LocDict(dict):
    """A mapping that knows its own line, the line of each key and, when it is a value, the line of
    the key that holds it (`key_line`)."""

    file: str = ""
    line: int = 0
    key_lines: dict
    key_line: int = 0


class LocList(list):
    file: str = ""
    line: int = 0
    item_lines: list
    key_line: int = 0


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
        value = loader.construct_object(value_node, deep=True)
        if isinstance(value, (LocDict, LocList)):
            value.key_line = key_node.start_mark.line + 1  # the `key:` that opens it
        out[key] = value
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LocList:
    out = LocList(loader.construct_object(child, deep=True) for child in node.value)
    out.file, out.line = loader.name, node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


MAX_BYTES = 1 << 20  # a spec or pattern file is a few kB; anything near this is not a spec
MAX_DEPTH = 64  # nesting of mappings and lists (PyYAML would recurse once per level)


class YamlInputError(ValueError):
    """A file that is not a spec before YAML is parsed: too large, not UTF-8, nested too deeply.
    `line` is 1-based."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


def _text(path: Path) -> str:
    with path.open("rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise YamlInputError(1, f"larger than {MAX_BYTES >> 10} KiB; not a spec")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise YamlInputError(line, f"not UTF-8 text (byte 0x{data[exc.start]:02x})") from None


def _check_depth(text: str, display: str) -> None:
    depth = 0
    for token in yaml.scan(text, Loader=yaml.SafeLoader):
        if isinstance(token, (yaml.FlowSequenceStartToken, yaml.FlowMappingStartToken,
                              yaml.BlockSequenceStartToken, yaml.BlockMappingStartToken)):  # fmt: skip
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlInputError(
                    token.start_mark.line + 1, f"nested deeper than {MAX_DEPTH} levels"
                )
        elif isinstance(token, (yaml.FlowSequenceEndToken, yaml.FlowMappingEndToken, yaml.BlockEndToken)):  # fmt: skip
            depth -= 1


def load_yaml(path: Path, display: str):
    """Parse `path`; `display` is the name used in locations. Raises yaml.YAMLError or
    YamlInputError (with the line)."""
    text = _text(path)
    _check_depth(text, display)
    loader = _Loader(text)
    loader.name = display
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
