#!/usr/bin/env python3
"""The import graph of each crate's source files, and its circles.

    tools/imports.py                 print each crate's import circles; exit 1 if any
    tools/imports.py --except NAME   ... not counting NAME's (still printed)
    tools/imports.py --dot           the whole graph, for dot(1)

How it is drawn: a node is a source file (a module: `src/lib.rs` or
`main.rs` is the crate root, `src/a.rs` or `src/a/mod.rs` is `a`,
`src/a/b.rs` is `a::b`). An edge A -> B means a path in A names an item of
B: `use crate::...`, `crate::...` inline, `super::...`, `self::...`, or a
child module's name used from its parent (`use child::X`, `child::f()`).
A `mod child;` declaration is not an import. A path through a re-export
(`pub use m::X` in another file) leads to the file that defines X. Test
modules (`tests.rs`, `#[cfg(test)] mod tests`) are left out: they import
what they test by design.
"""
import os
import re
import sys

# (name, source directory, root file, files left out, files whose module
# path is not their file name: the chainloader program's `#[path]` modules,
# for the host's architecture).
CRATES = [
    ("chainloader (library)", "chainloader/src", "lib.rs", ("main.rs", "rt/", "arch/"), {}),
    (
        "chainloader (program)",
        "chainloader/src",
        "main.rs",
        ("lib.rs", "args.rs", "elf.rs", "error.rs", "interp.rs", "machine.rs", "plan", "proto.rs", "arch/"),
        {"arch/x86_64.rs": ("arch",), "arch/lp64.rs": ("lp64",)},
    ),
    ("ldchain-resolver", "resolver/src", "lib.rs", (), {}),
    ("ldchain-service", "service/src", "lib.rs", (), {}),
    ("ldchain-sandbox", "sandbox/src", "lib.rs", (), {}),
    ("ldchain-embed", "embed/src", "lib.rs", (), {}),
    ("ldchain (CLI)", "src", "main.rs", ("lib.rs",), {}),
]

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def modules(root, root_file, left_out, overrides):
    """Module path (tuple) -> file, for one crate."""
    out = {(): os.path.join(root, root_file)}
    for rel, mod in overrides.items():
        out[mod] = os.path.join(root, rel)
    for dirpath, _, files in os.walk(root):
        for f in files:
            path = os.path.join(dirpath, f)
            rel_path = os.path.relpath(path, root)
            if not f.endswith(".rs") or rel_path == root_file or rel_path in overrides:
                continue
            if any(rel_path == x or (x.endswith("/") and rel_path.startswith(x)) or rel_path.startswith(x + "/")
                   for x in left_out):
                continue
            rel = rel_path[:-3].split(os.sep)
            mod = tuple(rel[:-1]) if rel[-1] == "mod" else tuple(rel)
            if mod and mod[-1] == "tests":
                continue
            out[mod] = path
    return out


def strip(text):
    """Source without comments, strings and test modules."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'b?"(?:\\.|[^"\\])*"', '""', text)
    # A #[cfg(test)] mod tests { ... } block: cut from the attribute on.
    m = re.search(r"#\[cfg\(test\)\]\s*mod\s+tests\s*\{", text)
    if m:
        text = text[: m.start()]
    return text


def use_paths(text):
    """Every path a `use` declares, expanded (`a::{b, c::d}` -> a::b, a::c::d)."""
    out = []

    def expand(prefix, body):
        depth, start, parts = 0, 0, []
        for i, c in enumerate(body):
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            elif c == "," and depth == 0:
                parts.append(body[start:i])
                start = i + 1
        parts.append(body[start:])
        for p in parts:
            p = p.strip()
            if not p:
                continue
            if "{" in p:
                head, rest = p.split("{", 1)
                expand(prefix + head.strip().rstrip(":").split("::") if head.strip() else prefix, rest.rsplit("}", 1)[0])
            else:
                p = re.split(r"\s+as\s+", p)[0]
                out.append([x for x in prefix + p.split("::") if x])

    for m in re.finditer(r"\buse\s+([^;]+);", text):
        expand([], m.group(1))
    return out


def resolve(mods, here, parts):
    """The module a path (as written in module `here`) names, or None."""
    if not parts:
        return None
    if parts[0] == "crate":
        base, rest = (), parts[1:]
    elif parts[0] == "super":
        base, rest = here, parts
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
    elif parts[0] == "self":
        base, rest = here, parts[1:]
    elif (here + (parts[0],)) in mods:
        base, rest = here, parts
    else:
        return None
    target = base
    for p in rest:
        if target + (p,) in mods:
            target = target + (p,)
        else:
            return (target, p)
    return (target, None)


def graph(spec):
    mods = modules(*spec[1:])
    texts = {m: strip(open(f).read()) for m, f in mods.items()}
    # Re-exports: (module, name) -> the module that defines it.
    reexport = {}
    for m, t in texts.items():
        for pm in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", t):
            for parts in use_paths("use " + pm.group(1) + ";"):
                r = resolve(mods, m, parts)
                if r and r[1]:
                    reexport[(m, parts[-1])] = r[0]
    edges = {m: set() for m in mods}
    for m, t in texts.items():
        paths = use_paths(t)
        for pm in re.finditer(r"\b((?:crate|super|self)(?:::" + IDENT + r")+)", t):
            paths.append(pm.group(1).split("::"))
        for pm in re.finditer(r"(?<![:\w])(" + IDENT + r")::(" + IDENT + r")", t):
            if (m + (pm.group(1),)) in mods:
                paths.append([pm.group(1), pm.group(2)])
        for parts in paths:
            r = resolve(mods, m, parts)
            if not r:
                continue
            target, item = r
            seen = set()
            while item and (target, item) in reexport and (target, item) not in seen:
                seen.add((target, item))
                target = reexport[(target, item)]
            if target != m:
                edges[m].add(target)
    return mods, edges


def circles(edges):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return out


def main():
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    args = sys.argv[1:]
    dot = "--dot" in args
    excepted = {args[i + 1] for i, a in enumerate(args[:-1]) if a == "--except"}
    bad = 0
    if dot:
        print("digraph imports {")
    for spec in CRATES:
        root = spec[0]
        mods, edges = graph(spec)
        name = lambda m: os.path.relpath(mods[m])
        if dot:
            for a, bs in sorted(edges.items()):
                for b in sorted(bs):
                    print(f'  "{name(a)}" -> "{name(b)}";')
            continue
        found = circles(edges)
        n_edges = sum(len(b) for b in edges.values())
        print(f"{root}: {len(mods)} files, {n_edges} imports, {len(found)} circles")
        if root in excepted and found:
            print("  (not counted: --except)")
        for comp in found:
            bad += root not in excepted
            files = sorted(name(m) for m in comp)
            print("  circle: " + " <-> ".join(files))
            for a in sorted(comp, key=name):
                back = sorted(name(b) for b in edges[a] if b in comp)
                print(f"    {name(a)} -> {', '.join(back)}")
    if dot:
        print("}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
