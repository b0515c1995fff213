"""The package's shape: one installed top-level name (dfscan), imports that point down the floors
(kernels < training, scanner < benchmarks < the CLI; scanning and training meet only in kernels), and
no import circle inside kernels. Read from the source with ast, lazy imports included."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Each folder's floor; a module may import its own folder and the floors below. training and scanner
# share a floor and never import each other. dfscan/ is the top (the CLI and the demo): nothing imports it.
FLOORS = {"kernels": 0, "training": 1, "scanner": 1, "benchmarks": 2, "dfscan": 3}
OLD_NAMES = ("kernels", "scanner", "training", "benchmarks")


def modules() -> dict[str, Path]:
    """dfscan's module names and their files: kernels/probe.py is dfscan.kernels.probe."""
    found = {}
    for folder in FLOORS:
        # dfscan/ holds only the top floor's modules (the device run links the floors under it: not followed)
        files = (REPO / folder).glob("*.py") if folder == "dfscan" else (REPO / folder).rglob("*.py")
        for path in sorted(files):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[0] != "dfscan":
                parts = ["dfscan", *parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, at any depth (lazy imports in functions count)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [(node.lineno, node.module)]
            out += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]  # `from x import module`
    return out


def floor_of(module: str) -> tuple[str, int]:
    part = module.split(".")[1] if module.count(".") >= 1 else "dfscan"
    folder = part if part in FLOORS and part != "dfscan" else "dfscan"
    return folder, FLOORS[folder]


def test_imports_point_down_and_name_only_dfscan():
    known = modules()
    wrong = []
    for name, path in known.items():
        folder, floor = floor_of(name)
        for line, target in imports(path):
            where = f"{path.relative_to(REPO)}:{line} imports {target}"
            if target.split(".")[0] in OLD_NAMES:
                wrong.append(f"{where}: the installed name is dfscan.{target}")
            if not target.startswith("dfscan.") and target != "dfscan" or target not in known:
                continue
            to_folder, to_floor = floor_of(target)
            if to_floor > floor or (to_floor == floor and to_folder != folder):
                wrong.append(f"{where}: {folder} (floor {floor}) may not import {to_folder} (floor {to_floor})")
            if to_folder == "dfscan" and not name.endswith("__main__") and folder != "dfscan":
                wrong.append(f"{where}: nothing imports the top floor")
    assert wrong == []


def test_the_checker_catches_a_floor_above_and_an_old_name(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from dfscan.scanner.run import run_scan\nimport kernels.probe\n")
    found = imports(bad)
    assert [target for _, target in found] == ["dfscan.scanner.run", "dfscan.scanner.run.run_scan", "kernels.probe"]
    assert floor_of("dfscan.scanner.run") == ("scanner", 1) and floor_of("dfscan.cli") == ("dfscan", 3)
    assert floor_of("dfscan.kernels.decode.nvdec") == ("kernels", 0)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_kernels_has_no_import_circle():
    known = modules()
    graph = {name: {target for _, target in imports(path) if target in known and target.startswith("dfscan.kernels")
                    and target != name}
             for name, path in known.items() if name.startswith("dfscan.kernels")}
    # A package's __init__ is imported on the way to its modules: that is no circle.
    graph = {name: {t for t in targets if not name.startswith(t + ".")} for name, targets in graph.items()}
    assert _cycles(graph) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]  # the checker sees one


@pytest.mark.slow
def test_the_wheel_installs_one_top_level_package(tmp_path):
    """`pip install .` puts exactly `dfscan` into site-packages (no `kernels`, which another popular
    distribution owns), the FaceForensics++ splits with it, and the console script `dfscan`."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(REPO)], check=True, timeout=600, capture_output=True)
    (wheel,) = tmp_path.glob("dfscan-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"dfscan", wheel.name.split("-py")[0] + ".dist-info"}
    assert {"dfscan/kernels/probe.py", "dfscan/scanner/run.py", "dfscan/training/fit.py", "dfscan/benchmarks/bench.py",
            "dfscan/cli.py", "dfscan/training/data/faceforensics_splits/test.json"} <= set(names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "dfscan = dfscan.cli:app" in zipfile.ZipFile(wheel).read(entry_points).decode()
