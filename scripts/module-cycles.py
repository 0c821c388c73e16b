#!/usr/bin/env python3
"""Finds import cycles between the Rust source files of a crate.

    python3 scripts/module-cycles.py app/src server/src

Each directory is one crate (its lib.rs or main.rs is the root). A file depends on another when it
names a path in it (`use crate::a::b`, `super::x::Y`, `crate::a::f()` in code). Edges between a module
and its own submodules are left out: a module encloses its children (`mod.rs` declares and re-exports
them), so parent and child referring to each other is structure, not a cycle. Everything else that
refers back and forth, directly or around a loop, is printed, and the exit status is 1.
"""

import re
import sys
from pathlib import Path

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def module_of(root: Path, file: Path) -> tuple:
    rel = file.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("lib", "main", "mod"):
        parts = parts[:-1]
    return tuple(parts)


def strip_comments_and_strings(text: str) -> str:
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    # Raw strings first, then ordinary ones (paths in string literals are not references).
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return text


def expand_use_tree(tree: str) -> list:
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix: str, rest: str):
        depth, start, items = 0, 0, []
        for i, ch in enumerate(rest):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                items.append(rest[start:i])
                start = i + 1
        items.append(rest[start:])
        for item in filter(None, items):
            brace = item.find("{")
            if brace >= 0 and item.endswith("}"):
                walk(prefix + item[:brace], item[brace + 1 : -1])
            else:
                out.append(prefix + item)

    walk("", tree)
    return out


def references(text: str, module: tuple, is_mod_file: bool) -> list:
    """Absolute module paths (tuples) that this file names."""
    here = module if is_mod_file else module
    parent = module[:-1]
    paths = []
    for tree in re.findall(r"\buse\s+([^;]+);", text):
        paths.extend(expand_use_tree(tree))
    paths.extend(re.findall(rf"\b(?:crate|super|self)(?:::{IDENT})+", text))
    resolved = []
    for path in paths:
        segments = [s for s in path.split("::") if s]
        segments = [s.split(" as ")[0] for s in segments]
        if not segments:
            continue
        if segments[0] == "crate":
            base, rest = (), segments[1:]
        elif segments[0] == "super":
            base, rest = parent, segments[1:]
            while rest and rest[0] == "super":
                base, rest = base[:-1], rest[1:]
        elif segments[0] == "self":
            base, rest = here, segments[1:]
        else:
            continue
        rest = [s for s in rest if s not in ("*", "self")]
        resolved.append(base + tuple(rest))
    return resolved


def crate_graph(root: Path):
    files = {}
    for file in sorted(root.rglob("*.rs")):
        files[module_of(root, file)] = file
    edges = {m: set() for m in files}
    for module, file in files.items():
        text = strip_comments_and_strings(file.read_text())
        for path in references(text, module, file.name == "mod.rs"):
            # The deepest module this path names (the rest are items inside it).
            target = None
            for n in range(len(path), -1, -1):
                if path[:n] in files:
                    target = path[:n]
                    break
            if target is None or target == module:
                continue
            encloses = module[: len(target)] == target or target[: len(module)] == module
            if not encloses:
                edges[module].add(target)
    return files, edges


def cycles(edges: dict) -> list:
    """Strongly connected components with more than one file (Tarjan)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in edges:
        if v not in index:
            connect(v)
    return found


def main(roots: list) -> int:
    status = 0
    for raw in roots:
        root = Path(raw)
        files, edges = crate_graph(root)
        found = cycles(edges)
        names = {m: str(files[m]) for m in files}
        n_edges = sum(len(v) for v in edges.values())
        if not found:
            print(f"module-cycles: {root}: {len(files)} files, {n_edges} dependencies, no cycles")
            continue
        status = 1
        for component in found:
            print(f"module-cycles: {root}: these files depend on each other in a loop:")
            members = set(component)
            for m in component:
                inside = sorted(names[t] for t in edges[m] if t in members)
                print(f"  {names[m]} -> {', '.join(inside)}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["app/src", "server/src"]))
