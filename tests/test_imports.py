"""The project's import graph has no circles: every arrow between modules points one way.

Imports are read with ``ast`` from every module of the package, including imports inside functions
(a late import that closes a circle is still a circle; a late import kept only to keep a heavy optional
library such as Ray, torch or matplotlib off the start-up path is fine, and the graph holds only the
project's own modules, so such libraries are not in it), relative imports, and modules named in a
``"autodata.module:attribute"`` string (the provider registry imports those on first use). Three circles existed
(``cli`` ↔ ``cli_analysis``, ``loop.episode`` ↔ ``loop.agent``, ``loop.run`` ↔ ``loop.executor``);
this keeps them and any new one out.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import autodata

PACKAGE = Path(autodata.__file__).resolve().parent
REGISTRY_ENTRY = re.compile(r"^autodata(\.\w+)+:\w+$")


def _modules() -> dict[str, Path]:
    mods = {}
    for p in PACKAGE.rglob("*.py"):
        if "__pycache__" in p.parts:
            continue
        parts = p.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = p
    return mods


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (a name imported from a module counts as that module)."""
    mods = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and REGISTRY_ENTRY.match(node.value):
                found.add(node.value.partition(":")[0])  # a "module:attribute" entry, imported on first use
        targets = {resolve(f) for f in found if f == "autodata" or f.startswith("autodata.")}
        # the package's own __init__ (``from autodata import x``) is not an arrow to a room
        graph[name] = {t for t in targets if t and t != name and t != "autodata"}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_import_graph_has_no_circles():
    graph = import_graph()
    assert "autodata.loop.episode" in graph and "autodata.cli" in graph  # the walk found the package
    found = circles(graph)
    assert found == [], "import circles (each a set of modules that import one another):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


def test_a_registry_entry_is_an_arrow():
    """The provider registry's ``"autodata.sim.provider:PROVIDER"`` is an import made later, still an arrow."""
    assert "autodata.sim.provider" in import_graph()["autodata.llm.providers"]


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_three_former_circles_now_point_one_way():
    graph = import_graph()
    assert "autodata.cli_analysis" in graph["autodata.cli"] and "autodata.cli" not in graph["autodata.cli_analysis"]
    assert "autodata.loop.episode" in graph["autodata.loop.agent"]
    assert "autodata.loop.agent" not in graph["autodata.loop.episode"]
    assert "autodata.loop.executor" in graph["autodata.loop.run"]
    assert "autodata.loop.run" not in graph["autodata.loop.executor"]


def test_the_public_surface_resolves_and_no_submodule_shadows_it():
    """Every curated name resolves; none is also a submodule's name (importing ``autodata.x`` would
    replace the function ``autodata.x`` with the module)."""
    import importlib

    for name in autodata.__all__:
        assert getattr(autodata, name) is not None, name
        assert not (PACKAGE / f"{name}.py").exists() and not (PACKAGE / name).is_dir(), name
    importlib.import_module("autodata.cli")  # loads the command modules
    assert callable(autodata.generate) and callable(autodata.load_config)


def test_every_training_reward_is_on_the_public_surface():
    """A reward a profile exports (``*_reward`` in ``autodata.rewards``: verifiable, rubric, code) is
    reachable as ``autodata.<name>``, as the README's rewards section shows them."""
    from autodata import rewards

    names = {n for n in vars(rewards) if n.endswith("_reward") and not n.startswith("_")}
    assert {"verifiable_reward", "rubric_reward", "code_reward"} <= names
    assert names <= set(autodata.__all__), names - set(autodata.__all__)
    assert autodata.code_reward is rewards.code_reward
