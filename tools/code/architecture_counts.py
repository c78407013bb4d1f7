#!/usr/bin/env python3
"""The architecture's counts that issue #30 measures, from the sources alone (no build):

- matches on the network kind (`Network::…`, `DecoderKind::…` paths) outside caption-model's
  `network.rs`, the module that builds a model from its configuration;
- import circles: in each crate, strongly connected groups of modules (files) that `use` each other
  through `crate::…`, `super::…` or `self::…` paths (a name re-exported by `lib.rs`/`mod.rs` counts
  as the module that defines it; `mod`/`pub use` re-exports themselves are not imports);
- functions longer than 150 lines (from `fn` to its closing brace, tests included);
- xtask's lines (xtask/src, blank lines and comments included, as `wc -l` counts them).

Usage: python3 tools/code/architecture_counts.py [REPO]   (prints the counts and what they are)
"""

import re
import sys
from pathlib import Path

LONG_FUNCTION = 150
KIND_PATTERN = re.compile(r"\b(Network|DecoderKind)::(?!ALL\b)[A-Z]\w*")
USE_PATTERN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?use\s+([^;]+);", re.M | re.S)
PATH_PATTERN = re.compile(r"\b(crate|super|self)((?:::\w+)+)")
FN_PATTERN = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(unsafe\s+)?(extern\s+\"C\"\s+)?fn\s+(\w+)", re.M)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def module_of(src, path):
    """`a::b` for src/a/b.rs or src/a/b/mod.rs; `` for lib.rs/main.rs."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts and parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def expand_use(tree):
    """The paths a `use` tree names: `a::{b, c::d}` → [a::b, a::c::d]."""
    tree = re.sub(r"\s+", "", re.sub(r"\s+as\s+\w+", "", tree))
    pieces = []
    if "{" not in tree:
        return [tree]
    prefix = tree[: tree.index("{")]
    inner = tree[tree.index("{") + 1 : tree.rindex("}")]
    depth, current = 0, ""
    for char in inner:
        if char == "," and depth == 0:
            pieces.append(current)
            current = ""
            continue
        depth += char == "{"
        depth -= char == "}"
        current += char
    if current:
        pieces.append(current)
    paths = []
    for piece in pieces:
        for path in expand_use(piece):
            paths.append(prefix + path if path != "self" else prefix.rstrip(":"))
    return paths


def crate_modules(src):
    files = {module_of(src, p): p for p in src.rglob("*.rs") if not p.name.endswith(".cu")}
    texts = {m: strip_comments(p.read_text()) for m, p in files.items()}
    # Re-exports: (module, name) → the path it names, from `pub use` in any module.
    reexports = {}
    for module, text in texts.items():
        for match in USE_PATTERN.finditer(text):
            if not match.group(1):
                continue
            for path in expand_use(match.group(3)):
                absolute = absolute_path(module, path)
                if absolute is not None:
                    reexports[module + (absolute[-1],)] = absolute
    return files, texts, reexports


def absolute_path(module, path):
    parts = [p for p in path.split("::") if p]
    if not parts:
        return None
    if parts[0] == "crate":
        return tuple(parts[1:])
    if parts[0] == "self":
        return module + tuple(parts[1:])
    if parts[0] == "super":
        base = list(module)
        while parts and parts[0] == "super":
            base = base[:-1]
            parts = parts[1:]
        return tuple(base) + tuple(parts)
    return None


def resolve(path, modules, reexports, seen=0):
    """The module (file) that defines what `path` names."""
    path = tuple(path)
    for length in range(len(path), -1, -1):
        prefix = path[:length]
        if prefix in modules:
            rest = path[length:]
            if rest and prefix + rest[:1] in reexports and seen < 8:
                return resolve(reexports[prefix + rest[:1]] + rest[1:], modules, reexports, seen + 1)
            return prefix
    return ()


def import_circles(src):
    modules, texts, reexports = crate_modules(src)
    edges = {m: set() for m in modules}
    for module, text in texts.items():
        body = text
        for match in USE_PATTERN.finditer(text):
            if match.group(1):  # a re-export is not an import
                body = body.replace(match.group(0), "")
                continue
            for path in expand_use(match.group(3)):
                absolute = absolute_path(module, path)
                if absolute is not None:
                    edges[module].add(resolve(absolute, modules, reexports))
        for match in PATH_PATTERN.finditer(USE_PATTERN.sub("", body)):
            absolute = absolute_path(module, match.group(1) + match.group(2))
            if absolute is not None:
                edges[module].add(resolve(absolute, modules, reexports))
    for module in edges:
        edges[module].discard(module)
        # A parent module declaring its children (and a child naming its parent's items through
        # `super::`) is the tree itself, not an import; count only sideways and upward imports.
        edges[module] = {t for t in edges[module] if t != module[: len(t)] or t == ()}
        edges[module].discard(())  # lib.rs: the crate root's own items are re-exports
    return strongly_connected(edges)


def strongly_connected(edges):
    index, low, stack, on_stack, groups, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted("::".join(m) or "lib" for m in group))

    sys.setrecursionlimit(10000)
    for node in list(edges):
        if node not in index:
            visit(node)
    return groups


def long_functions(path):
    lines = path.read_text().split("\n")
    found = []
    text = "\n".join(lines)
    for match in FN_PATTERN.finditer(text):
        start = text.count("\n", 0, match.start())
        depth, opened = 0, False
        for number in range(start, len(lines)):
            code = re.sub(r"//.*", "", lines[number])
            code = re.sub(r"'(\\.|[^'\\])'", "", code)
            code = re.sub(r'"(\\.|[^"\\])*"', "", code)
            if not opened and ";" in code and "{" not in code:
                break  # a declaration without a body
            depth += code.count("{") - code.count("}")
            opened = opened or "{" in code
            if opened and depth <= 0:
                length = number - start + 1
                if length > LONG_FUNCTION:
                    found.append((match.group(7), length))
                break
    return found


def main():
    repo = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    sources = sorted(p for p in repo.glob("*/**/*.rs") if "target" not in p.parts and ".git" not in p.parts)
    network = repo / "crates/caption-model/src/network.rs"
    kind_matches = [
        (p, n + 1)
        for p in sources
        if p != network
        for n, line in enumerate(strip_comments(p.read_text()).split("\n"))
        for _ in KIND_PATTERN.finditer(line)
    ]
    # A match on the kind: a match arm, a comparison or a `let … else` naming a kind; the other
    # paths name a kind as a value (a setting, a test's configuration).
    decisions = [
        (p, n)
        for p, n in kind_matches
        if re.search(r"=>|==|!=|\belse\b", strip_comments(p.read_text()).split("\n")[n - 1])
    ]
    print(f"matches on the network kind outside network.rs: {len(decisions)}")
    for path, line in decisions:
        print(f"  {path.relative_to(repo)}:{line}")
    print(f"network-kind paths outside network.rs (values included): {len(kind_matches)}")
    for path, count in sorted({p: sum(1 for q, _ in kind_matches if q == p) for p, _ in kind_matches}.items()):
        print(f"  {count:3}  {path.relative_to(repo)}")
    circles = []
    for src in sorted(repo.glob("crates/*/src")) + [repo / "xtask/src"]:
        for group in import_circles(src):
            circles.append((src.parent.name, group))
    print(f"import circles: {len(circles)}")
    for crate, group in circles:
        print(f"  {crate}: {' ↔ '.join(group)}")
    long = [(p, name, n) for p in sources for name, n in long_functions(p)]
    print(f"functions over {LONG_FUNCTION} lines: {len(long)}")
    for path, name, length in long:
        print(f"  {length:4}  {name}  ({path.relative_to(repo)})")
    xtask = sum(p.read_text().count("\n") for p in (repo / "xtask/src").rglob("*.rs"))
    print(f"xtask lines: {xtask}")


if __name__ == "__main__":
    main()
