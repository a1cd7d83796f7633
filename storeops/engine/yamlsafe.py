"""Safe YAML reading with source positions and hard limits.

Packs and scenarios are user text, so reading them must neither construct
objects nor blow up: PyYAML only *composes* the node graph here (its composer
is linear in the text), and this module turns nodes into plain values itself.
That gives us three things ``yaml.safe_load`` does not:

* limits: file size, nesting depth, and the size of the document once aliases
  are expanded (a "billion laughs" file is refused after composing a few
  hundred nodes, before anything is expanded);
* positions: every value and every mapping key keeps its 1-based line and
  column, so schema and cross-reference errors can point at the exact place;
* a stricter reading: YAML 1.2 core scalars (``yes``/``no``/``on``/``off``
  stay strings, ``12:30`` is not a sexagesimal number, dates stay text),
  duplicate keys are errors, and explicit tags other than the core ones are
  refused.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml

from .errors import Location, YamlError

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 200_000

Path = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_ALLOWED_TAGS = {_STR, _INT, _FLOAT, _BOOL, _NULL, _MAP, _SEQ, _MERGE}


class _Resolver(yaml.resolver.Resolver):
    """YAML 1.2 core schema resolution instead of PyYAML's YAML 1.1 defaults."""

    yaml_implicit_resolvers: ClassVar[dict] = {}


for _tag, _pattern, _first in (
    (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (_INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        _FLOAT,
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    (_NULL, r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (_MERGE, r"^(?:<<)$", "<"),
):
    _Resolver.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


class _Composer(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    _Resolver,
):
    """PyYAML's composer with a nesting-depth guard; it never constructs objects."""

    def __init__(self, text: str, max_depth: int) -> None:
        yaml.reader.Reader.__init__(self, text)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _Resolver.__init__(self)
        self._depth = 0
        self._max_depth = max_depth

    def compose_node(self, parent, index):  # type: ignore[override]
        self._depth += 1
        try:
            if self._depth > self._max_depth:
                mark = self.peek_event().start_mark
                raise _LimitError(f"nesting deeper than {self._max_depth} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _LimitError(Exception):
    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


@dataclass(frozen=True)
class Document:
    """A YAML document as plain values plus where each value came from."""

    path: str
    text: str
    data: Any
    sha256: str
    _nodes: dict[Path, yaml.Node] = field(repr=False, compare=False)
    _keys: dict[Path, yaml.Node] = field(repr=False, compare=False)

    def locate(self, path: Path) -> Location:
        """Where the value at ``path`` starts; the nearest ancestor when it is absent."""
        path = tuple(path)
        while path not in self._nodes and path:
            path = path[:-1]
        node = self._nodes.get(path)
        if node is None:
            return Location(self.path, 1, 1)
        return _location(self.path, node.start_mark)

    def locate_key(self, path: Path) -> Location:
        """Where the key of the mapping entry at ``path`` starts (falls back to the value)."""
        node = self._keys.get(tuple(path))
        if node is None:
            return self.locate(path)
        return _location(self.path, node.start_mark)

    def scalar_locator(self, path: Path) -> Callable[[int], Location]:
        """Map a character offset inside the scalar at ``path`` to a file position.

        Used for expressions: an error at offset 7 of ``when:`` points at the
        right column. Quoted scalars start one column after the quote; block
        literals (``|``) map line by line; escapes and folding are approximate.
        """
        node = self._nodes.get(tuple(path))
        if not isinstance(node, yaml.ScalarNode):
            base = self.locate(path)
            return lambda offset: base
        mark = node.start_mark
        style = node.style
        file = self.path
        if style in ("|", ">"):
            lines = self.text.splitlines()
            first = mark.line + 1
            source_line = lines[first] if first < len(lines) else ""
            indent = len(source_line) - len(source_line.lstrip(" "))
            value = node.value

            def block(offset: int) -> Location:
                before = value[:offset]
                line = before.count("\n")
                col = offset - (before.rfind("\n") + 1)
                return Location(file, first + line + 1, indent + col + 1)

            return block
        shift = 1 if style in ("'", '"') else 0
        return lambda offset: Location(file, mark.line + 1, mark.column + 1 + shift + offset)


def _location(file: str, mark: Any) -> Location:
    return Location(file, mark.line + 1, mark.column + 1)


def load(
    path: str | os.PathLike,
    *,
    display: str | None = None,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
) -> Document:
    """Read a YAML file safely; raise YamlError with a location on any problem."""
    from .files import read_limited

    shown = display or os.fspath(path)
    raw = read_limited(path, limit=max_bytes, shown=shown, what="a YAML file", error=YamlError)
    return loads(raw, display=shown, max_bytes=max_bytes, max_depth=max_depth,
                 max_nodes=max_nodes)


def loads(
    raw: bytes | str,
    *,
    display: str = "<string>",
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
) -> Document:
    """Parse YAML text (one document) into a Document; see ``load``."""
    data_bytes = raw.encode("utf-8") if isinstance(raw, str) else raw
    if len(data_bytes) > max_bytes:
        raise YamlError(
            f"text is {len(data_bytes):,} bytes, more than the limit of {max_bytes:,}",
            Location(display, 1, 1),
        )
    try:
        text = data_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data_bytes[: exc.start].count(b"\n") + 1
        raise YamlError("not valid UTF-8 text", Location(display, line, 1)) from None
    digest = hashlib.sha256(data_bytes).hexdigest()
    composer = None
    try:
        composer = _Composer(text, max_depth)
        root = composer.get_single_node()
    except _LimitError as exc:
        raise YamlError(exc.message, _location(display, exc.mark)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "unreadable YAML"
        if "expected a single document" in str(exc.context or ""):
            problem = "expected a single YAML document, found more than one"
        location = _location(display, mark) if mark else Location(display, 1, 1)
        raise YamlError(problem, location) from None
    except yaml.reader.ReaderError as exc:
        # a character YAML does not allow (control characters, some unicode)
        before = text[: exc.position]
        line = before.count("\n") + 1
        col = exc.position - (before.rfind("\n") + 1) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise YamlError(f"character U+{code:04X} is not allowed in YAML",
                        Location(display, line, col)) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"unreadable YAML: {exc}", Location(display, 1, 1)) from None
    finally:
        if composer is not None:
            composer.dispose()
    if root is None:
        return Document(display, text, None, digest, {(): None}, {})  # type: ignore[dict-item]
    _check_size(root, display, max_nodes)
    builder = _Builder(display)
    data = builder.build(root, ())
    return Document(display, text, data, digest, builder.nodes, builder.keys)


def _check_size(root: yaml.Node, display: str, max_nodes: int) -> None:
    """Refuse documents whose alias expansion would exceed ``max_nodes`` values.

    Sizes are memoised per node, so the check costs one visit per distinct
    node however many times aliases repeat it; a node reached again while it
    is still being measured is a recursive alias.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise YamlError("recursive alias", _location(display, node.start_mark))
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                total += size(child)
                if total > max_nodes:
                    break
        elif isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                total += size(key_node) + size(value_node)
                if total > max_nodes:
                    break
        active.discard(key)
        if total > max_nodes:
            raise YamlError(
                f"document expands to more than {max_nodes:,} values (aliases)",
                _location(display, node.start_mark),
            )
        sizes[key] = total
        return total

    size(root)


class _Builder:
    """Turn composed nodes into plain Python values, remembering positions."""

    def __init__(self, display: str) -> None:
        self.display = display
        self.nodes: dict[Path, yaml.Node] = {}
        self.keys: dict[Path, yaml.Node] = {}

    def fail(self, message: str, node: yaml.Node) -> YamlError:
        return YamlError(message, _location(self.display, node.start_mark))

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.nodes[path] = node
        if node.tag not in _ALLOWED_TAGS:
            raise self.fail(f"tag '{node.tag}' is not allowed (plain YAML values only)", node)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, index)) for index, child in enumerate(node.value)]
        return self.mapping(node, path)

    def scalar(self, node: yaml.ScalarNode) -> Any:
        text, tag = node.value, node.tag
        if tag in (_STR, _MERGE):
            return text
        if tag == _NULL:
            return None
        if tag == _BOOL:
            if text.lower() in ("true", "false"):
                return text.lower() == "true"
            raise self.fail(f"'{text}' is not a boolean (use true or false)", node)
        if tag == _INT:
            try:
                if text.startswith("0o"):
                    return int(text[2:], 8)
                if text.startswith("0x"):
                    return int(text[2:], 16)
                return int(text)
            except ValueError:
                raise self.fail(f"'{text}' is not an integer", node) from None
        lowered = text.lower()
        if lowered.endswith(".inf"):
            return -math.inf if lowered.startswith("-") else math.inf
        if lowered == ".nan":
            return math.nan
        try:
            return float(text)
        except ValueError:
            raise self.fail(f"'{text}' is not a number", node) from None

    def mapping(self, node: yaml.MappingNode, path: Path) -> dict:
        result: dict[str, Any] = {}
        merged: list[yaml.MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [
                    value_node
                ]
                for source in sources:
                    if not isinstance(source, yaml.MappingNode):
                        raise self.fail("'<<' merges mappings only", source)
                    merged.append(source)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail("mapping keys must be plain scalars", key_node)
            key = key_node.value
            if key in result:
                raise self.fail(f"duplicate key '{key}'", key_node)
            self.keys[(*path, key)] = key_node
            result[key] = self.build(value_node, (*path, key))
        for source in merged:
            for key_node, value_node in source.value:
                key = key_node.value
                if isinstance(key_node, yaml.ScalarNode) and key not in result:
                    self.keys[(*path, key)] = key_node
                    result[key] = self.build(value_node, (*path, key))
        return result
