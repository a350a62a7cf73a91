"""The floors of the code (ARCHITECTURE.md): an app imports only apps on its own floor or below, and the
import graph of the apps has no cycle. Read from the source with `ast`, lazy imports inside functions
included, so an upward import fails here before it can rot the shape."""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Lowest first: each may import the ones before it, never the ones after.
FLOORS = ("leadmgmt", "leads", "scoring", "routing", "nurture", "workspace")


@dataclass(frozen=True)
class Import:
    path: str
    line: int
    importer: str  # app of the importing module
    imported: str  # app of the imported module
    module: str


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def app_imports(root: Path, floors=FLOORS) -> list[Import]:
    """Every import of one app's module by another app's module under `root`."""
    found = []
    for app in floors:
        for path in sorted((root / app).rglob("*.py")):
            module = _module_name(root, path)
            package = module if path.name == "__init__.py" else module.rpartition(".")[0]
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    if node.level:
                        base = package.split(".")[: len(package.split(".")) - node.level + 1]
                        targets = [".".join([*base, node.module] if node.module else base)]
                    else:
                        targets = [node.module or ""]
                else:
                    continue
                for target in targets:
                    top = target.split(".")[0]
                    if top in floors and top != app:
                        found.append(Import(str(path.relative_to(root)), node.lineno, app, top, target))
    return found


def upward_imports(imports: list[Import], floors=FLOORS) -> list[Import]:
    return [i for i in imports if floors.index(i.imported) > floors.index(i.importer)]


def app_cycles(imports: list[Import]) -> list[list[str]]:
    """Cycles of the app graph (each as the list of apps on it), found by depth-first search."""
    graph: dict[str, set[str]] = {}
    for i in imports:
        graph.setdefault(i.importer, set()).add(i.imported)
    cycles, state = [], {}

    def visit(app: str, trail: list[str]) -> None:
        state[app] = "open"
        for nxt in sorted(graph.get(app, ())):
            if state.get(nxt) == "open":
                cycles.append([*trail[trail.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[app] = "done"

    for app in sorted(graph):
        if app not in state:
            visit(app, [app])
    return cycles


def _report(imports: list[Import]) -> str:
    return "\n".join(f"  {i.path}:{i.line} ({i.importer}) imports {i.module} ({i.imported}, a higher floor)"
                     for i in imports)


def test_no_app_imports_a_higher_floor():
    upward = upward_imports(app_imports(ROOT))
    assert not upward, ("A lower floor imports a higher one; send an event instead (ARCHITECTURE.md):\n"
                        + _report(upward))


def test_the_app_import_graph_has_no_cycle():
    assert app_cycles(app_imports(ROOT)) == []


def test_every_app_is_on_a_floor():
    apps = {p.parent.name for p in ROOT.glob("*/apps.py")} | {"leadmgmt"}
    assert apps == set(FLOORS), "a new app needs its floor in FLOORS and in ARCHITECTURE.md"


def _plant(root: Path, files: dict[str, str]) -> None:
    for app in FLOORS:
        (root / app).mkdir(parents=True, exist_ok=True)
        (root / app / "__init__.py").write_text("")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_a_planted_upward_import_fails(tmp_path):
    _plant(tmp_path, {
        "leads/models.py": "from leadmgmt.tenancy.models import Tenant\n",  # down: fine
        "leads/services/capture.py": "def f():\n    from routing.services import assign\n",  # lazy, up
        "scoring/engine.py": "from ..workspace import views\n",  # relative, up
        "workspace/views.py": "from leads.models import Lead\nfrom nurture import models\n",  # down: fine
    })
    upward = upward_imports(app_imports(tmp_path))
    assert {(i.path, i.imported) for i in upward} == {("leads/services/capture.py", "routing"),
                                                      ("scoring/engine.py", "workspace")}
    assert "leads/services/capture.py:2 (leads) imports routing.services" in _report(upward)


def test_a_planted_cycle_is_found(tmp_path):
    _plant(tmp_path, {"leads/a.py": "import scoring.b\n", "scoring/b.py": "from routing import c\n",
                      "routing/c.py": "from leads import a\n"})
    assert app_cycles(app_imports(tmp_path)) == [["leads", "scoring", "routing", "leads"]]


def test_architecture_md_names_the_floors_and_events_that_exist():
    """ARCHITECTURE.md stays true: its floors line is FLOORS, and every event it names is defined."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    assert " ← ".join(FLOORS) in text
    events = re.findall(r"`((?:leadmgmt|leads|scoring|routing|nurture|workspace)(?:\.\w+)+)`", text)
    assert events, "ARCHITECTURE.md names the events that cross floors"
    for dotted in events:
        assert _resolves(dotted), f"ARCHITECTURE.md names {dotted}, which is gone"


def _resolves(dotted: str) -> bool:
    """A module (`routing.notifications`) or a name in one (`leads.events.lead_captured`)."""
    import importlib

    try:
        importlib.import_module(dotted)
        return True
    except ModuleNotFoundError:
        module, _, name = dotted.rpartition(".")
        try:
            return hasattr(importlib.import_module(module), name)
        except ModuleNotFoundError:
            return False
