"""The package's shape: no import circles (imports inside functions included), the directions between its parts,
no module over 500 lines, benches in their own folder, and no private name imported across modules."""

import ast
from pathlib import Path

import pytest

from .conftest import ROOT

PACKAGE = ROOT / "hsir"

# The parts of the kit, by module: a direction below names them.
TASKS = {"hsir.tasks", "hsir.answers", "hsir.synthetic", "hsir.traces", "hsir.hub", "hsir.data"}
ENGINE = {"hsir.generate", "hsir.vllm_backend", "hsir.completions", "hsir.models"}
SCORING = {"hsir.indiv", "hsir.diversity", "hsir.scoring"}
TRAINING = {"hsir.train", "hsir.grpo", "hsir.rewards"}
RUN_STORE = {"hsir.runs"}
LOOP = {"hsir.selfimprove"}
REPORTS = {"hsir.results", "hsir.rounds", "hsir.paper", "hsir.figures", "hsir.claims", "hsir.power", "hsir.explore",
           "hsir.explore_data",
           "hsir.paper_report", "hsir.generalization"}

DIRECTIONS = [  # (what, never imports, why)
    (TASKS, {"hsir.models", *ENGINE}, "tasks never import the models or the engine"),
    (SCORING, TRAINING, "scoring never imports training"),
    (RUN_STORE, LOOP, "the run store never imports the loop"),
    (ENGINE, LOOP, "the engine never imports the loop"),
    (REPORTS, LOOP, "reports never import the loop"),
]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: set[str], name: str | None = None) -> set[str]:
    """Every kit module ``path`` imports, wherever the import statement sits (functions included)."""
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # hsir.bench.common.machine -> hsir.bench.common
                t = t.rpartition(".")[0]
            if t and t != name and t != "hsir":
                out.add(t)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {m: imports_of(p, known) for m, p in mods.items()}


def reaches(g: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in g.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(g.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(g):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_walker_sees_imports_inside_functions_and_finds_a_circle(tmp_path):
    known = {"hsir.a", "hsir.b"}
    a = tmp_path / "a.py"
    a.write_text("def f():\n    from hsir.b import g\n    return g\n")
    assert imports_of(a, known, "hsir.a") == {"hsir.b"}
    assert find_cycle({"hsir.a": {"hsir.b"}, "hsir.b": {"hsir.c"}, "hsir.c": {"hsir.a"}}) == [
        "hsir.a", "hsir.b", "hsir.c", "hsir.a"]
    assert find_cycle({"hsir.a": {"hsir.b"}, "hsir.b": set()}) is None


def test_no_import_circles():
    cycle = find_cycle(graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


@pytest.mark.parametrize("what,never,why", DIRECTIONS, ids=[d[2] for d in DIRECTIONS])
def test_directions(what, never, why):
    g = graph()
    bad = {m: sorted(reaches(g, m) & never) for m in what if m in g}
    assert not any(bad.values()), f"{why}: {bad}"


def test_config_is_a_leaf():
    assert graph()["hsir.config"] == set()


def test_no_module_over_500_lines():
    long = {m: n for m, p in modules().items() if (n := len(p.read_text().splitlines())) > 500}
    assert not long, f"modules over 500 lines: {long}"


def test_benches_live_in_their_own_folder():
    assert not list(PACKAGE.glob("bench_*.py")) and not (PACKAGE / "bench.py").exists()
    assert (PACKAGE / "bench" / "__main__.py").exists()


def test_no_private_name_is_imported_across_modules():
    found = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hsir"):
                found += [f"{name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    assert not found, found
