"""YAML loading that remembers the line of every key, so config errors can name it.

Every YAML file the pipeline reads comes through here, and is held to what a config file
needs: plain values only (a ``!!python/...`` or other explicit tag is refused, never
constructed), no key written twice, and aliases that add at most ``MAX_ALIAS_NODES``
values (a "billion laughs" alias bomb is refused in milliseconds, before anything is
built from it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import PipelineError
from pipeline.files import input_file

KeyPath = tuple[str, ...]
MAX_ALIAS_NODES = 10_000  # values that aliases may add: far above any real config file
_PLAIN_TAGS = {
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "timestamp", "seq", "map", "merge")
}
_MERGE = "tag:yaml.org,2002:merge"


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

    def check_keys(
        self,
        mapping: Mapping[Any, Any],
        known: Iterable[str],
        *keys: str,
        what: str = "field",
        of: str = "",
    ) -> None:
        """Refuse the first key of ``mapping`` (the value at ``keys``) not in ``known``, at
        its own line: a misspelt setting must never be silently ignored."""
        known = tuple(known)
        for key in mapping:
            if key not in known:
                raise self.error(
                    f"unknown {what} {key!r}{f' for {of}' if of else ''}",
                    *keys,
                    str(key),
                    hint=f"known: {', '.join(known)}",
                )


def read_yaml(path: Path, what: str, hint: str | None = None) -> YamlDoc:
    """Read and parse the YAML file at ``path``; ``what`` names it in errors."""
    raw = input_file(path, what, hint=hint).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise PipelineError(f"the {what} is not UTF-8", path=path, line=line) from None
    return parse_yaml(text, path)


def parse_yaml(text: str, path: Path, start_line: int = 1) -> YamlDoc:
    """Parse ``text`` (which begins at ``start_line`` of ``path``) into a :class:`YamlDoc`."""

    def error(message: str, line: int, hint: str) -> PipelineError:
        return PipelineError(message, path=path, line=start_line + line, hint=hint)

    def invalid(exc: yaml.MarkedYAMLError, mark: yaml.Mark | None, hint: str) -> PipelineError:
        return error(f"invalid YAML: {exc.problem or exc}", mark.line if mark else 0, hint)

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        # An unclosed bracket is reported where it was opened, not at the end of the file.
        hint = "check indentation and quote values that contain ': ' or start with a symbol"
        raise invalid(exc, exc.context_mark or exc.problem_mark, hint) from None
    except yaml.reader.ReaderError as exc:  # a NUL or other control character
        raise error(
            f"invalid YAML: character {exc.character!r} is not allowed",
            text.count("\n", 0, exc.position),
            "remove the control character (a stray NUL byte or similar) from the file",
        ) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise error(f"invalid YAML: {exc}", 0, "write plain keys, values and lists") from None
    if node is None:
        return YamlDoc(None, path, {}, start_line)
    _check_nodes(node, path, start_line)
    lines: dict[KeyPath, int] = {}
    _collect_lines(node, (), lines, start_line)
    try:
        data = yaml.SafeLoader("").construct_document(node)
    except yaml.MarkedYAMLError as exc:  # e.g. a bad timestamp or merge
        mark = exc.problem_mark or exc.context_mark
        raise invalid(exc, mark, "write plain keys, values and lists") from None
    return YamlDoc(data, path, lines, start_line)


def _check_nodes(root: yaml.Node, path: Path, start: int) -> None:
    """Refuse explicit tags, keys written twice and aliases that expand too far, before
    anything is constructed: each is found in one pass over the composed nodes."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    added = 0  # values that aliases add to the document

    def error(node: yaml.Node, message: str, hint: str) -> PipelineError:
        return PipelineError(message, path=path, line=start + node.start_mark.line, hint=hint)

    def visit(node: yaml.Node) -> int:
        nonlocal added
        key = id(node)
        if key in sizes:  # an alias: the node again, whole
            added += sizes[key]
            if added > MAX_ALIAS_NODES:
                raise error(
                    node,
                    f"aliases here expand the document past {MAX_ALIAS_NODES:,} values",
                    "write the values out, or use fewer nested aliases (*name)",
                )
            return sizes[key]
        if key in visiting:
            raise error(node, "an alias refers to the value that contains it", "remove it")
        if node.tag not in _PLAIN_TAGS:
            raise error(
                node,
                f"the tag {node.tag!r} is not allowed",
                "write plain values: YAML tags (!!python/..., !something) are never run or built",
            )
        visiting.add(key)
        size = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value in node.value:
                if key_node.tag != _MERGE and isinstance(key_node, yaml.ScalarNode):
                    if key_node.value in seen:
                        raise error(
                            key_node,
                            f"the key {key_node.value!r} is written twice (first on line "
                            f"{start + seen[key_node.value]})",
                            "keep one of them: otherwise the last would silently win",
                        )
                    seen[key_node.value] = key_node.start_mark.line
                size += visit(key_node) + visit(value)
        elif isinstance(node, yaml.SequenceNode):
            size += sum(visit(item) for item in node.value)
        visiting.discard(key)
        sizes[key] = size
        return size

    try:
        visit(root)
    except RecursionError:
        raise PipelineError("the YAML is nested too deeply", path=path, line=start) from None


def _collect_lines(node: yaml.Node, prefix: KeyPath, out: dict[KeyPath, int], start: int) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            key_path = (*prefix, str(key.value))
            out.setdefault(key_path, start + key.start_mark.line)
            _collect_lines(value, key_path, out, start)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            item_path = (*prefix, str(index))  # list items are keyed by their index
            out.setdefault(item_path, start + item.start_mark.line)
            _collect_lines(item, item_path, out, start)
