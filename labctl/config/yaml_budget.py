"""YAML with an alias budget: a document whose aliases would expand it beyond a small budget (a "billion
laughs" bomb) is refused after composing, before anything walks the expansion.

    data = load_yaml(text)                     # yaml.safe_load, but raises AliasBudgetExceeded
    data = load_yaml(text, MyLoader)           # any SafeLoader subclass
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

ALIAS_BUDGET = 10_000
"""How many values aliases may add to a document, beyond those written in it."""
ALIAS_FIX = "write the values out, or use fewer levels of anchors (&name) and aliases (*name)"


class AliasBudgetExceeded(yaml.YAMLError):
    """The document's aliases expand it beyond the budget, or an alias contains itself."""


class AliasCycle(AliasBudgetExceeded):
    """An alias refers to a value that contains it (an infinite expansion)."""


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def expanded_size(root: Node, limit: int) -> int:
    """The number of nodes `root` stands for with every alias expanded, counted up to `limit` (memoised by
    node, so a bomb costs only its written size).

    Raises:
        AliasBudgetExceeded: the count passes `limit`.
        AliasCycle: a node contains itself.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > limit:
                raise AliasBudgetExceeded(f"aliases expand the document past {limit} values")
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise AliasCycle("an alias refers to a value that contains it")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)]


def distinct_nodes(root: Node) -> int:
    """The nodes written in the document: reachable node objects, each alias target counted once."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            stack.extend(_children(node))
    return len(seen)


def load_yaml(
    text: str, loader_cls: type[yaml.SafeLoader] = yaml.SafeLoader, budget: int = ALIAS_BUDGET
) -> Any:
    """`yaml.load(text, loader_cls)` for one document, refusing alias expansion beyond `budget` extra values.

    Raises:
        AliasBudgetExceeded: see `expanded_size`.
        yaml.YAMLError: the text is not valid YAML.
    """
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        written = distinct_nodes(node)
        try:
            expanded_size(node, written + budget)
        except AliasCycle:
            raise
        except AliasBudgetExceeded:
            raise AliasBudgetExceeded(
                f"aliases would add more than {budget} values to the {written} written (an alias bomb?)"
            ) from None
        return loader.construct_document(node)
    finally:
        loader.dispose()
