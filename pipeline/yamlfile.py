"""YAML loading that remembers the line of every key, so config errors can name it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import PipelineError

KeyPath = tuple[str, ...]


@dataclass(frozen=True)
class YamlDoc:
    """A parsed YAML document plus the source line of each mapping key."""

    data: Any
    """The plain Python value (dicts, lists, scalars)."""

    path: Path
    """The file it came from."""

    lines: dict[KeyPath, int] = field(default_factory=dict)
    """1-based line of each key (list items: their index), by its path from the root."""

    start_line: int = 1
    """Line of the document's first line in the file (front matter starts after ``---``)."""

    def line_of(self, *keys: str) -> int:
        """The line of the deepest known key along ``keys`` (the document start if none)."""
        for depth in range(len(keys), 0, -1):
            line = self.lines.get(tuple(keys[:depth]))
            if line is not None:
                return line
        return self.start_line

    def error(self, message: str, *keys: str, hint: str | None = None) -> PipelineError:
        """An error located at the line of ``keys``."""
        return PipelineError(message, path=self.path, line=self.line_of(*keys), hint=hint)


def read_yaml(path: Path, what: str, hint: str | None = None) -> YamlDoc:
    """Read and parse the YAML file at ``path``; ``what`` names it in errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineError(f"{what} not found", path=path, hint=hint) from None
    except UnicodeDecodeError:
        raise PipelineError(f"the {what} is not UTF-8", path=path, line=1) from None
    return parse_yaml(text, path)


def parse_yaml(text: str, path: Path, start_line: int = 1) -> YamlDoc:
    """Parse ``text`` (which begins at ``start_line`` of ``path``) into a :class:`YamlDoc`."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        # An unclosed bracket is reported where it was opened, not at the end of the file.
        mark = exc.context_mark or exc.problem_mark
        line = start_line + mark.line if mark else start_line
        raise PipelineError(
            f"invalid YAML: {exc.problem or exc}",
            path=path,
            line=line,
            hint="check indentation and quote values that contain ': ' or start with a symbol",
        ) from exc
    if node is None:
        return YamlDoc(None, path, {}, start_line)
    data = yaml.SafeLoader("").construct_document(node)
    lines: dict[KeyPath, int] = {}
    _collect_lines(node, (), lines, start_line)
    return YamlDoc(data, path, lines, start_line)


def _collect_lines(node: yaml.Node, prefix: KeyPath, out: dict[KeyPath, int], start: int) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            key_path = (*prefix, str(key.value))
            out[key_path] = start + key.start_mark.line
            _collect_lines(value, key_path, out, start)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            item_path = (*prefix, str(index))  # list items are keyed by their index
            out[item_path] = start + item.start_mark.line
            _collect_lines(item, item_path, out, start)
