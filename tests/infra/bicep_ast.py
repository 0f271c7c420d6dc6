"""Reading Bicep's syntax tree (tree-sitter-bicep): the helpers the infra tests share."""

from __future__ import annotations

import tree_sitter
import tree_sitter_bicep

_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bicep.language()))


def parse(source: bytes) -> tree_sitter.Tree:
    return _PARSER.parse(source)


def named(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    """The named children of `node`, comments left out."""
    return [c for c in node.named_children if c.type != "comment"]


def string_literal(node: tree_sitter.Node) -> str | None:
    """The value of a plain string literal ('abc', no interpolation), else None."""
    if node.type != "string":
        return None
    parts = named(node)
    if any(p.type != "string_content" for p in parts):
        return None
    return "".join(p.text.decode() for p in parts)


def property_key(prop: tree_sitter.Node) -> str:
    key = named(prop)[0]
    text = string_literal(key)
    return text if text is not None else key.text.decode()


def property_value(prop: tree_sitter.Node) -> tree_sitter.Node:
    return named(prop)[-1]


def object_properties(obj: tree_sitter.Node) -> dict[str, tree_sitter.Node]:
    return {property_key(p): property_value(p) for p in named(obj) if p.type == "object_property"}


def walk(node: tree_sitter.Node):
    yield node
    for child in node.children:
        yield from walk(child)


def position(node: tree_sitter.Node) -> str:
    """`line:column`, both 1-based."""
    return f"{node.start_point[0] + 1}:{node.start_point[1] + 1}"


def line(node: tree_sitter.Node) -> int:
    """The 1-based line `node` starts on."""
    return node.start_point[0] + 1
