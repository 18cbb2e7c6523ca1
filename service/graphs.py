"""Walks over id graphs (regions including regions, notices superseding notices), never recursive.

Rule files are hostile input: a chain of thousands of regions must give an error at its line,
not a RecursionError, so every walk here keeps its own stack and runs in time linear in the graph."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

Graph = Mapping[str, Iterable[str]]


def _children(graph: Graph, node: str) -> list[str]:
    return [child for child in graph.get(node, ()) if child in graph]


def on_cycles(graph: Graph) -> set[str]:
    """Nodes that lie on a cycle (Tarjan's strongly connected components, with an explicit stack)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[str] = set()
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, next_child = work.pop()
            if next_child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            children = _children(graph, node)
            if next_child < len(children):
                work.append((node, next_child + 1))
                child = children[next_child]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if work:  # back in the parent: carry the low link up
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    found.update(component)
    return found


def cycle_from(start: str, graph: Graph) -> list[str]:
    """The shortest path from `start` back to itself, e.g. [a, b, a], or [] if there is none."""
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in _children(graph, node):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if child not in parent:
                    parent[child] = node
                    following.append(child)
        frontier = following
    return []


def depths(graph: Graph) -> dict[str, int]:
    """How many levels each node spans: 1 for a node with no children, else 1 + its deepest
    child's. The graph must have no cycle."""
    depth: dict[str, int] = {}
    for root in graph:
        work = [root]
        while work:
            node = work[-1]
            if node in depth:
                work.pop()
                continue
            pending = [c for c in _children(graph, node) if c not in depth]
            if pending:
                work += pending
            else:
                depth[node] = 1 + max((depth[c] for c in _children(graph, node)), default=0)
                work.pop()
    return depth


def deepest_path(start: str, graph: Graph, depth: Mapping[str, int]) -> list[str]:
    """The chain of nodes from `start` down its deepest branch."""
    path = [start]
    while children := _children(graph, path[-1]):
        path.append(max(children, key=lambda c: depth[c]))
    return path
