"""Dependencies between the handler's modules point one way.

src/lib.rs lists the top-level modules in layers (domain at the bottom,
startup at the top). This check reads every `crate::<module>` path in src/
(use declarations and inline paths alike) and fails when a module uses one of
a higher layer, or when two modules use each other (directly or through a
longer cycle). Submodules count as their top-level module: `crate::store::keys`
is `store`. Tests inside a module (`#[cfg(test)]` blocks) count too;
comments, doc links included, do not.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"

# A numbered item of src/lib.rs's layout map (`//! 3. [`store`] — …`) and the
# lines that continue it (`//!    …`).
MAP_ITEM = re.compile(r"^//! (\d+)\. (.*)$")
MAP_CONTINUED = re.compile(r"^//!    (.*)$")
MODULE_LINK = re.compile(r"\[`([a-z_]+)`\]")


def layout_map(lib_rs: str) -> list[set[str]]:
    """The layers of src/lib.rs's layout map, lowest first: the modules
    linked in each numbered item."""
    layers: list[set[str]] = []
    current: set[str] | None = None
    for line in lib_rs.splitlines():
        item = MAP_ITEM.match(line)
        if item:
            assert int(item.group(1)) == len(layers) + 1, f"layout map numbering: {line!r}"
            current = set(MODULE_LINK.findall(item.group(2)))
            layers.append(current)
            continue
        continued = MAP_CONTINUED.match(line)
        if continued and current is not None:
            current.update(MODULE_LINK.findall(continued.group(1)))
        else:
            current = None
    return layers


# The layers, lowest first, as src/lib.rs documents them. A module may use
# modules of its own layer only where listed in SAME_LAYER_USES.
LAYERS: list[set[str]] = layout_map((SRC / "lib.rs").read_text(encoding="utf-8"))
SAME_LAYER_USES: set[tuple[str, str]] = {
    # The per-lead email is rendered as a digest of its leads.
    ("delivery", "digest"),
}

CRATE_PATH = re.compile(r"\bcrate::([a-z_]+)")
CRATE_GROUP_START = re.compile(r"\bcrate::\{")
# Comments (doc links included) are not dependencies.
COMMENT = re.compile(r"//[^\n]*")


def module_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".rs")


def uses(source: str) -> set[str]:
    found = set(CRATE_PATH.findall(source))
    # `use crate::{a::X, b::{c, d}}`: the first segment of each top-level item.
    for start in CRATE_GROUP_START.finditer(source):
        depth, item = 1, ""
        for char in source[start.end():]:
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    break
            if depth == 1 and char == ",":
                found.add(item.strip().split("::")[0].strip())
                item = ""
            elif depth == 1:
                item += char
            elif depth > 1 and "::" not in item:
                item += char
        found.add(item.strip().split("::")[0].strip())
    found.discard("")
    return {name for name in found if re.fullmatch(r"[a-z_]+", name)}


def dependency_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.rs"):
        module = module_of(path)
        if module in {"lib", "main"}:
            continue
        code = COMMENT.sub("", path.read_text(encoding="utf-8"))
        deps = uses(code) - {module}
        graph.setdefault(module, set()).update(deps)
    return graph


def layer_of(module: str) -> int:
    for i, layer in enumerate(LAYERS):
        if module in layer:
            return i
    raise AssertionError(f"module {module!r} is in no layer: add it to LAYERS and src/lib.rs")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, deps in sorted(graph.items()):
        for dep in sorted(deps):
            if layer_of(dep) > layer_of(module) or (
                layer_of(dep) == layer_of(module) and (module, dep) not in SAME_LAYER_USES
            ):
                problems.append(f"{module} uses {dep} (layer {layer_of(dep)} >= its own {layer_of(module)})")
    return problems


def test_the_layout_map_names_every_module_once():
    mapped = [module for layer in LAYERS for module in layer]
    assert len(mapped) == len(set(mapped)), f"a module in two layers: {mapped}"
    declared = set(re.findall(r"^pub mod ([a-z_]+);", (SRC / "lib.rs").read_text(encoding="utf-8"), re.M))
    on_disk = {module_of(path) for path in SRC.rglob("*.rs")} - {"lib", "main"}
    assert set(mapped) == declared == on_disk


def test_every_module_is_in_a_layer():
    graph = dependency_graph()
    for module in graph:
        layer_of(module)


def test_no_module_uses_a_module_that_uses_it_back():
    assert cycles(dependency_graph()) == []


def test_dependencies_point_down_the_layers():
    assert layer_violations(dependency_graph()) == []


def test_the_layout_map_is_read_item_by_item():
    lib_rs = "//! Intro [`nope`].\n//!\n//! 1. [`domain`] — x.\n//!    [`clock`] — y.\n//! 2. [`store`].\n//!\n//! [`later`]\n"
    assert layout_map(lib_rs) == [{"domain", "clock"}, {"store"}]


def test_the_check_finds_a_cycle_and_an_upward_use():
    graph = {"domain": {"store"}, "store": {"domain"}, "email": set()}
    assert cycles(graph) == [["domain", "store", "domain"]]
    assert layer_violations({"domain": {"store"}}) == ["domain uses store (layer 3 >= its own 0)"]
    assert uses("use crate::{domain::Lead, store::{keys, LeadId}};\nlet x = crate::email::Mailer;") == {
        "domain",
        "store",
        "email",
    }


# Within a module, its submodules depend on each other one way too: a file
# that uses a sibling which (through its own files) uses it back is a
# circle, whatever the layers. Paths are resolved from `use` trees (braces
# expanded) and inline `crate::`/`super::`/`self::` paths.
USE_DECL = re.compile(r"\buse\s+((?:crate|super|self)\b[^;]*);", re.S)
INLINE_PATH = re.compile(r"\b(?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+")


def module_path(path: Path) -> tuple[str, ...]:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    if parts in (["lib"], ["main"]):
        return ()
    return tuple(parts)


def expand_use_tree(tree: str) -> list[str]:
    """`a::{b, c::{d, e}}` → [`a::b`, `a::c::d`, `a::c::e`]."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)
    tree = re.sub(r"\s+", "", tree)
    brace = tree.find("{")
    if brace < 0:
        return [tree]
    prefix, inner = tree[:brace], tree[brace + 1 : tree.rfind("}")]
    items, depth, item = [], 0, ""
    for char in inner:
        if char == "," and depth == 0:
            items.append(item)
            item = ""
            continue
        depth += char == "{"
        depth -= char == "}"
        item += char
    items.append(item)
    return [path for item in items if item for path in expand_use_tree(prefix + item)]


def resolve(here: tuple[str, ...], path: str) -> tuple[str, ...]:
    segments = [s for s in path.split("::") if s]
    if segments[0] == "crate":
        return tuple(segments[1:])
    current = list(here)
    while segments and segments[0] in ("super", "self"):
        if segments.pop(0) == "super":
            current = current[:-1]
    return tuple(current + segments)


def references(path: Path) -> set[tuple[str, ...]]:
    code = COMMENT.sub("", path.read_text(encoding="utf-8"))
    here = module_path(path)
    # A file's `super` is its parent module's; a `mod.rs`'s is one higher.
    found = set()
    for declaration in USE_DECL.findall(code):
        found.update(resolve(here, p) for p in expand_use_tree(declaration))
    for inline in INLINE_PATH.findall(code):
        found.add(resolve(here, inline))
    return found


def sibling_graphs() -> dict[tuple[str, ...], dict[str, set[str]]]:
    modules = {module_path(p) for p in SRC.rglob("*.rs")} - {()}
    graphs: dict[tuple[str, ...], dict[str, set[str]]] = {}
    for path in SRC.rglob("*.rs"):
        here = module_path(path)
        for target in references(path):
            # The deepest common parent, and the two children under it.
            common = 0
            while common < min(len(here), len(target)) and here[common] == target[common]:
                common += 1
            if common >= len(here) or common >= len(target):
                continue  # a module and its own ancestor or descendant
            parent = here[:common]
            source, dest = here[common], target[common]
            if parent + (dest,) not in modules or parent + (source,) not in modules:
                continue  # an item, not a module
            graphs.setdefault(parent, {}).setdefault(source, set()).add(dest)
    return graphs


def test_no_file_level_import_circle():
    circles = {
        "::".join(parent) or "crate": found
        for parent, graph in sibling_graphs().items()
        if (found := cycles(graph))
    }
    assert circles == {}


def test_the_file_level_check_finds_a_circle(tmp_path):
    assert expand_use_tree("super::{server::X, rejection::{a, b as c}}") == [
        "super::server::X",
        "super::rejection::a",
        "super::rejection::b",
    ]
    assert resolve(("http", "filters"), "super::server::X") == ("http", "server", "X")
    assert resolve(("http",), "crate::store::keys") == ("store", "keys")
    graph = {"filters": {"server"}, "server": {"limits"}, "limits": {"filters"}}
    assert cycles(graph) == [["filters", "server", "limits", "filters"]]
