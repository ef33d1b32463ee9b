"""The import structure of docs/architecture.md holds: the layers contract in pyproject.toml
(import-linter, which CI also runs as `lint-imports`) is kept, and no modules import each other in
a circle, lazy imports included. Both checks are shown failing on a package built to break them."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]


def import_cycles(package: str) -> list[list[str]]:
    """Every set of modules of ``package`` that import each other in a circle (Tarjan's strongly
    connected components of the import graph), imports for type checking only left out."""
    graph = grimp.build_graph(package, exclude_type_checking_imports=True, cache_dir=None)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # recursion depth is bounded by the number of modules
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


def lint_imports(cwd: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    env = None if extra_path is None else {**os.environ, "PYTHONPATH": str(extra_path)}
    command = Path(sys.executable).with_name("lint-imports")  # installed beside this Python
    return subprocess.run([str(command), "--no-cache"], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)


def test_vqpool_has_no_import_cycle() -> None:
    assert import_cycles("vqpool") == []


def test_vqpool_keeps_its_layers() -> None:
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package ``tangled`` whose lower layer imports its upper one, lazily, in a function."""
    package = tmp_path / "src" / "tangled"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "top.py").write_text("from tangled import bottom\n")
    (package / "bottom.py").write_text(textwrap.dedent("""
        def late():
            from tangled import top  # the deliberate cycle
            return top
    """))
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent("""
        [tool.importlinter]
        root_package = "tangled"

        [[tool.importlinter.contracts]]
        name = "tangled's layers point down"
        type = "layers"
        containers = ["tangled"]
        layers = ["top", "bottom"]
    """))
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    return tmp_path


def test_both_checks_fail_on_a_deliberate_cycle(broken: Path) -> None:
    assert import_cycles("tangled") == [["tangled.bottom", "tangled.top"]]
    done = lint_imports(broken, broken / "src")
    assert done.returncode == 1 and "1 broken" in done.stdout
    assert "tangled.bottom -> tangled.top" in done.stdout
