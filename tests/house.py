"""The house rules, checked by reading the source (``ast``), nothing imported or run.

A room is a folder or a module. Within every folder of the package, the rooms it holds form a graph: an
import from anything inside room A of anything inside room B is an arrow A -> B. The rules:

- ``cycle``: no folder's rooms import each other in a circle (imports inside functions count too);
- ``carriers-store``: ``carriers/`` never imports ``store/`` (a plug-in is given narrow ports);
- ``store-above-core``: ``store/`` imports nothing of the gateway but ``core/``, ``errors`` and ``config``;
- ``api-worker``: ``api/`` imports nothing of the worker side (media, jobs, carriers, delivery, postbacks,
  the runtime);
- ``client-server``: the client imports nothing of the server: only ``client/``, ``contract/``, ``core/``,
  ``errors`` and the package's version;
- ``size``: no source file passes 600 lines;
- ``carrier-check``: outside a carrier plug-in's folder (``carriers/NAME/``), nothing compares a value with
  a name the plug-in goes by (its folder's, or a ``KIND``/``NAME`` constant's: ``== "sandbox"``) or asks
  ``isinstance`` of a class the plug-in defines.

``tests/unit/test_house.py`` runs :func:`check` on the package, and on small trees made to break each rule.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_LINES = 600
WORKER_SIDE = ("media", "jobs", "carriers", "delivery", "postbacks", "runtime")
STORE_MAY_USE = ("store", "core", "errors", "config", "__init__")
CLIENT_MAY_USE = ("client", "contract", "core", "errors")
NAME_CONSTANTS = frozenset({"KIND", "NAME", "MM7", "SMPP"})
"""Module-level constants whose string value is a name a plug-in goes by (its kind, a connector's name)."""


@dataclass(frozen=True, order=True)
class Violation:
    rule: str
    where: str
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.where}: {self.detail}"


@dataclass(frozen=True)
class Module:
    name: tuple[str, ...]
    """Its dotted name without the package's own (``("store", "sql", "jobs")``; a package's face ends
    with ``__init__``)."""
    path: Path
    tree: ast.Module
    lines: int


def modules(root: Path) -> list[Module]:
    """Every module of the package whose folder is ``root``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        text = path.read_text(encoding="utf-8")
        found.append(Module(parts, path, ast.parse(text), len(text.splitlines())))
    return found


def _resolve(name: str, package: str, known: set[tuple[str, ...]]) -> tuple[str, ...] | None:
    """The package's module that the dotted ``name`` is (or holds, for a name defined in a module)."""
    parts = tuple(name.split("."))
    if parts[0] != package:
        return None
    target = parts[1:]
    while target:
        if target in known:
            return target
        if (*target, "__init__") in known:
            return (*target, "__init__")
        target = target[:-1]  # `a.b.name`: the module a.b
    return ("__init__",)


def _imported(module: Module, package: str, known: set[tuple[str, ...]]) -> Iterator[tuple[str, ...]]:
    """The package's modules that ``module`` imports, anywhere in its code."""
    for node in ast.walk(module.tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.name[: len(module.name) - node.level]
                prefix = ".".join((package, *base, *([node.module] if node.module else [])))
            else:
                prefix = node.module or ""
            names = [f"{prefix}.{alias.name}" for alias in node.names]
        for name in names:
            target = _resolve(name, package, known)
            if target is not None:
                yield target


def check(root: Path) -> list[Violation]:
    """Every breach of the house rules in the package whose folder is ``root``."""
    package = root.name
    mods = modules(root)
    known = {m.name for m in mods}
    imports = {m.name: set(_imported(m, package, known)) - {m.name} for m in mods}
    found: list[Violation] = []
    found.extend(_cycles(imports))
    for module in mods:
        where = str(module.path.relative_to(root.parent))
        for target in sorted(imports[module.name]):
            found.extend(_rules(module.name, target, where, package))
        if module.lines > MAX_LINES:
            found.append(Violation("size", where, f"{module.lines} lines (at most {MAX_LINES})"))
        found.extend(_carrier_checks(module, where))
    return sorted(found)


def _dotted(package: str, name: tuple[str, ...]) -> str:
    return ".".join((package, *(p for p in name if p != "__init__")))


def _rules(source: tuple[str, ...], target: tuple[str, ...], where: str, package: str) -> Iterator[Violation]:
    room, to, shown = source[0], target[0], _dotted(package, target)
    if room == "carriers" and to == "store":
        yield Violation("carriers-store", where, f"imports {shown}")
    if room == "store" and to not in STORE_MAY_USE:
        yield Violation("store-above-core", where, f"imports {shown}")
    if room == "api" and to in WORKER_SIDE:
        yield Violation("api-worker", where, f"imports {shown}")
    if room == "client" and to not in (*CLIENT_MAY_USE, "__init__"):
        yield Violation("client-server", where, f"imports {shown}")


def _cycles(imports: dict[tuple[str, ...], set[tuple[str, ...]]]) -> Iterator[Violation]:
    """Circles among the rooms of each folder."""
    folders = {name[:depth] for name in imports for depth in range(len(name))}
    for folder in sorted(folders):
        depth = len(folder)
        arrows: dict[str, set[str]] = {}
        for source, targets in imports.items():
            if source[:depth] != folder or len(source) <= depth:
                continue
            for target in targets:
                if target[:depth] == folder and len(target) > depth and target[depth] != source[depth]:
                    arrows.setdefault(source[depth], set()).add(target[depth])
        for circle in _strongly_connected(arrows):
            where = "/".join(folder) or "."
            yield Violation("cycle", where, " <-> ".join(sorted(circle)))


def _strongly_connected(arrows: dict[str, set[str]]) -> Iterator[set[str]]:
    """The groups of more than one room that reach each other (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    counter = 0
    found: list[set[str]] = []

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in arrows.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.add(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(group)

    for node in sorted(set(arrows) | {n for targets in arrows.values() for n in targets}):
        if node not in index:
            visit(node)
    yield from found


def _plugin_of(name: tuple[str, ...], plugins: dict[str, frozenset[str]]) -> str | None:
    return name[1] if len(name) > 2 and name[0] == "carriers" and name[1] in plugins else None


@functools.cache
def _plugins(root: Path) -> dict[str, frozenset[str]]:
    """Each carrier plug-in (a folder under ``carriers/``) and the names it goes by: the folder's name, and
    the strings its modules give :data:`NAME_CONSTANTS`."""
    found: dict[str, frozenset[str]] = {}
    folder = root / "carriers"
    for plugin in sorted(p for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        names = {plugin.name}
        for path in plugin.rglob("*.py"):
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if (
                    isinstance(node, ast.Assign)
                    and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str)
                    and any(isinstance(t, ast.Name) and t.id in NAME_CONSTANTS for t in node.targets)
                ):
                    names.add(node.value.value)
        found[plugin.name] = frozenset(names)
    return found


def _carrier_checks(module: Module, where: str) -> Iterable[Violation]:
    root = module.path.parents[len(module.name) - 1]
    plugins = _plugins(root) if (root / "carriers").is_dir() else {}
    own = _plugin_of(module.name, plugins)
    kinds = {kind: plugin for plugin, names in plugins.items() if plugin != own for kind in names}
    classes = _plugin_classes(root, own)
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                if isinstance(operand, ast.Constant) and operand.value in kinds:
                    yield Violation("carrier-check", f"{where}:{node.lineno}", f"compares with {operand.value!r}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance":
            for name in ast.walk(node.args[1]) if len(node.args) > 1 else ():
                if isinstance(name, ast.Name | ast.Attribute):
                    ident = name.id if isinstance(name, ast.Name) else name.attr
                    if ident in classes:
                        yield Violation("carrier-check", f"{where}:{node.lineno}", f"isinstance of {ident}")


@functools.cache
def _plugin_classes(root: Path, own: str | None) -> frozenset[str]:
    """The classes the other plug-ins define."""
    names: set[str] = set()
    for plugin in _plugins(root) if (root / "carriers").is_dir() else {}:
        folder = root / "carriers" / plugin
        if plugin == own:
            continue
        for path in folder.rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names.update(node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef))
    return frozenset(names)
