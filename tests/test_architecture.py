"""The layers point down only and no project modules import each other in a circle.

Why a test: cycles and upward imports creep in one convenient import at a time; each makes a part
impossible to read, test or install without the others (the checker must install without torch).
Every import counts, also those inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("validators", "trainer", "bot")
# a layer may import the layers before it, never one after it
LAYERS = {"validators": 0, "trainer": 1, "bot": 2}


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _absolute(name: str) -> str:
    """A project module's name inside the ``labrador`` package, as the graph spells it (``trainer.sdg``)."""
    return name.removeprefix("labrador.")


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (``from pkg import mod`` is an edge to ``pkg.mod``)."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [_absolute(a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = _absolute(node.module or "")
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.append(sub if sub in modules else source)
            for target in targets:
                while target and target not in modules:  # `import a.b.c` of a name inside a module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle_and_the_graph_reads_relative_imports():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    graph = import_graph()
    assert "trainer.sdg.steps.base" in graph["trainer.sdg.engine"] or "trainer.sdg.steps" in graph["trainer.sdg.engine"]
    assert "validators.schema" in graph["validators.leaf"]  # `from . import schema`


def test_no_import_cycles_among_project_modules():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("lower", PACKAGES)
def test_no_layer_imports_a_layer_above_it(lower):
    upward = sorted(f"{m} imports {t}" for m, targets in import_graph().items() if m.split(".")[0] == lower
                    for t in targets if LAYERS[t.split(".")[0]] > LAYERS[lower])
    assert upward == []


def _callers(name: str) -> set[str]:
    """Project modules that call ``name(...)`` (the defining module's own definition is not a call)."""
    found = set()
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                if called == name:
                    found.add(module)
    return found


def test_one_function_builds_a_teacher_and_one_wires_distillation_into_training():
    assert _callers("make_teacher") == {"trainer.teachers.config"}  # build_teacher, from [teacher] settings
    # the command edges; an evaluation builds its judge from [teacher] and the models it compares from folders
    assert _callers("build_teacher") <= {"trainer.sdg.cli", "trainer.preview", "trainer.nightly.night", "bot.preview",
                                         "trainer.evaluation.cli", "trainer.nightly.branch",
                                         "trainer.evaluation.answering"}
    assert _callers("make_loss_factory") == {"trainer.training"}  # `labrador train` and the night alike


def _absolute_imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.append(node.module)
    return names


def test_every_project_import_goes_through_the_one_labrador_package():
    # `import trainer` works from the repository root only (and the registry's `validators` and `trainer` are
    # other projects): installed, everything is `labrador.*`.
    files = [*_modules().values(), *(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    bare = sorted(f"{path.relative_to(ROOT)} imports {name}" for path in files for name in _absolute_imports(path)
                  if name.split(".")[0] in PACKAGES)
    assert bare == []


def test_the_wheel_lists_every_package_folder():
    """``pyproject.toml`` names the packages one by one (a mapped layout cannot be found automatically): a new
    folder left out would be missing from the wheel but importable in the repository."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"labrador": "."}
    folders = {"labrador"} | {"labrador." + ".".join(p.parent.relative_to(ROOT).parts)
                              for package in PACKAGES for p in (ROOT / package).rglob("__init__.py")}
    assert set(setuptools["packages"]) == folders
    assert (ROOT / "__init__.py").is_file()
    # the entry points name modules that exist under the one package
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    targets = [project["scripts"]["labrador"], *(v for group in project["entry-points"].values()
                                                  for v in group.values())]
    modules = {"labrador." + m for m in _modules()}
    assert all(re.fullmatch(r"labrador\.[\w.]+:\w+", t) and t.split(":")[0] in modules for t in targets), targets


def test_a_teacher_specs_prefix_is_read_in_one_place():
    """``http(s)://``, ``vllm:``, ``replay:``, ``embedded``, ``transformers:`` name backends in one table
    (``trainer/teachers/backends.py``): no other module tests a string for them."""
    prefixes = {"http://", "https://", "vllm:", "replay:", "embedded", "embedded:", "transformers:"}
    found = []
    for module, path in _modules().items():
        if module == "trainer.teachers.backends":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("startswith", "removeprefix") and node.args:
                consts = {n.value for n in ast.walk(node.args[0]) if isinstance(n, ast.Constant)}
                if consts & prefixes:
                    found.append(f"{module}:{node.lineno}")
    assert found == []


# Inside trainer/, the floors of the pipeline: a sub-package (or top-level module) imports only floors below it.
SUBLAYERS = {
    "validators": 0,
    "trainer": 1, "trainer.devices": 1, "trainer.jsonl": 1, "trainer.markdown": 1, "trainer.settings": 1,
    "trainer.charts": 1,  # the report charts' one grammar (matplotlib)
    "trainer.models": 2,  # the registry's models: catalogue and store (the embedded teacher is one)
    "trainer.teachers": 3, "trainer.mixing": 3,
    "trainer.sdg": 4,
    "trainer.train": 5, "trainer.preview": 5,
    "trainer.distill": 6,
    "trainer.training": 7,
    "trainer.students": 8,  # derive and heal: they train
    "trainer.evaluation": 9,
    "trainer.nightly": 10,
    "trainer.serving": 11,  # chat and serve: name a night's model
    "bot": 12,
}


def _floor(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "trainer" and len(parts) >= 2 else parts[0]


def test_every_trainer_sub_package_imports_only_floors_below_it():
    graph = import_graph()
    floors = {_floor(m) for m in graph}
    assert floors <= set(SUBLAYERS), f"give {sorted(floors - set(SUBLAYERS))} a floor in SUBLAYERS"
    upward = sorted(f"{m} imports {t}" for m, targets in graph.items() for t in targets
                    if _floor(m) != _floor(t) and SUBLAYERS[_floor(t)] >= SUBLAYERS[_floor(m)])
    assert upward == []


def test_tests_mirror_the_packages_and_no_test_module_imports_another():
    """Shared fixtures live in ``conftest.py`` files and shared helpers in ``tests/*kit.py`` modules: a test
    module that imports another runs (and re-collects) its tests, and hides fixtures from the reader."""
    tests = ROOT / "tests"
    for folder in tests.rglob("*"):
        if folder.is_dir() and any(folder.glob("test_*.py")) and folder != tests:
            package = ROOT / folder.relative_to(tests)
            assert package.is_dir() and (package / "__init__.py").is_file(), \
                f"{folder.relative_to(ROOT)} mirrors no package (expected {package.relative_to(ROOT)}/)"
    importers = []
    for path in tests.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            importers += [f"{path.relative_to(ROOT)} imports {n}" for n in names if n.split(".")[0].startswith("test_")]
    assert importers == []
