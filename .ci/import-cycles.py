#!/usr/bin/env python3
"""Fails when modules under src/ import each other in a circle.

Every `crate::a::b::…` path in a module's code (its `use` lines and inline paths) is an arrow to
the longest prefix that is a module file (src/a/b.rs or src/a/b/mod.rs). A module's own
`#[cfg(test)] mod tests` block is left out, and a parent's `pub mod child;` is not an arrow.
Prints the arrows with --list; prints each circle found and exits 1 when there is one.
"""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"


def module_of(path: pathlib.Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "mod":
        parts.pop()
    if parts in (["lib"], ["main"]):
        return "crate" if parts == ["lib"] else "main"
    return "::".join(parts)


modules = {module_of(p): p for p in SRC.rglob("*.rs")}
arrows = {m: set() for m in modules}
for name, path in modules.items():
    text = path.read_text()
    cut = text.find("#[cfg(test)]\nmod tests")
    if cut >= 0:
        text = text[:cut]
    for ref in re.findall(r"\bcrate::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)", text):
        parts = ref.split("::")
        for n in range(len(parts), 0, -1):
            target = "::".join(parts[:n])
            if target in modules:
                if target != name:
                    arrows[name].add(target)
                break

if "--list" in sys.argv:
    for m in sorted(arrows):
        for t in sorted(arrows[m]):
            print(f"{m} -> {t}")

# Tarjan's strongly connected components: every component of more than one module is a circle.
index, low, on_stack, stack, circles = {}, {}, set(), [], []
counter = [0]


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on_stack.add(v)
    for w in arrows[v]:
        if w not in index:
            visit(w)
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
            circles.append(sorted(component))


sys.setrecursionlimit(10000)
for v in sorted(arrows):
    if v not in index:
        visit(v)
edges = sum(len(t) for t in arrows.values())
if circles:
    for c in circles:
        print("import circle: " + " <-> ".join(c))
    sys.exit(1)
print(f"no import circle among {len(modules)} modules ({edges} arrows)")
