"""Layering: the filter core imports no tool, tools use the core's public names only, and
no module imports itself round a circle.

The rules live in setup.cfg's `[importlinter]` contracts (run by `lint-imports`); the
public-name rule and the module-level circles (a package's `__init__` and its children
included) are checked here, on grimp's graph and the tools' source. Each check is also
run on a tree broken on purpose, so it is known to be able to fail.
"""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

from conftest import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGE = ROOT / "vsremaster"
#: The tools: they may import the core, never the other way round.
TOOLS = ("bench", "evaluation", "training", "render", "commands", "__main__")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` with the project's contracts on the package under `root`."""
    env = {**os.environ, "PYTHONPATH": str(root), "NO_COLOR": "1"}
    return subprocess.run([str(LINT_IMPORTS), str(ROOT / "setup.cfg"), "--no-cache"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


def broken_copy(tmp_path: Path, module: str, line: str) -> Path:
    """A copy of the package under tmp_path with `line` added to `module`'s file."""
    shutil.copytree(PACKAGE, tmp_path / "vsremaster",
                    ignore=shutil.ignore_patterns("__pycache__", "models"))
    path = tmp_path / Path(*module.split(".")).with_suffix(".py")
    if not path.exists():
        path = path.with_suffix("") / "__init__.py"
    path.write_text(path.read_text() + f"\n{line}\n")
    return tmp_path


def test_the_import_contracts_are_kept():
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_contracts_see_the_core_import_a_tool(tmp_path):
    run = lint_imports(broken_copy(tmp_path, "vsremaster.limits",
                                   "from .bench.config import variant_name"))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "The filter core imports no tool BROKEN" in run.stdout, run.stdout
    assert "vsremaster.limits -> vsremaster.bench.config" in run.stdout, run.stdout


def test_the_contracts_see_a_lower_tool_import_a_higher_one(tmp_path):
    run = lint_imports(broken_copy(tmp_path, "vsremaster.render.media",
                                   "def f():\n    from ..training import loop"))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Tools depend on each other in one direction BROKEN" in run.stdout, run.stdout


# --- circles --------------------------------------------------------------------------

def circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The import circles of `graph`: its strongly connected sets of two or more modules
    (Tarjan's algorithm, iterative); function-level imports count as grimp counts them."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.find_modules_directly_imported_by(nxt)))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        found.append(sorted(group))
    return found


def _why(graph: grimp.ImportGraph, group: list[str]) -> str:
    lines = []
    for a in group:
        for b in sorted(graph.find_modules_directly_imported_by(a) & set(group)):
            details = graph.get_import_details(importer=a, imported=b)
            where = ", ".join(f"line {d['line_number']}" for d in details)
            lines.append(f"  {a} -> {b} ({where})")
    return "\n".join(lines)


def test_no_module_imports_itself_round_a_circle():
    graph = grimp.build_graph("vsremaster", cache_dir=None)
    found = circles(graph)
    assert not found, "import circles:\n" + "\n\n".join(_why(graph, g) for g in found)


def test_the_circle_finder_finds_circles():
    graph = grimp.ImportGraph()
    for a, b in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d"),
                 ("p", "p.e"), ("p.e", "p"), ("p.d", "p.f")]:
        graph.add_import(importer=a, imported=b)
    assert sorted(circles(graph)) == [["p", "p.e"], ["p.a", "p.b", "p.c"]]


# --- public names -----------------------------------------------------------------------

def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_core(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "vsremaster" and (len(parts) == 1 or parts[1] not in TOOLS)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_module(module: str, root: Path) -> bool:
    path = root / Path(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def private_uses(source: str, module: str, is_package: bool, root: Path = ROOT) -> list[str]:
    """Where `source` (the module `module`) uses a private name of a core module:
    imports of `_name` or of a `_module`, and `alias._name` on an imported core module."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    modules: dict[str, str] = {}          # local name -> the core module it is bound to
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if not _is_core(base):
                continue
            if any(_private(p) for p in base.split(".")):
                found.append(f"line {node.lineno}: imports the private module {base}")
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"line {node.lineno}: imports {base}.{alias.name}")
                elif _is_module(f"{base}.{alias.name}", root):
                    modules[alias.asname or alias.name] = f"{base}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if not _is_core(alias.name):
                    continue
                if any(_private(p) for p in alias.name.split(".")):
                    found.append(f"line {node.lineno}: imports the private module {alias.name}")
                if alias.asname:
                    modules[alias.asname] = alias.name
                else:
                    modules[alias.name.split(".")[0]] = alias.name.split(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            chain, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in modules:
                dotted = ".".join([modules[value.id]] + chain[::-1])
                found.append(f"line {node.lineno}: uses {dotted}")
    return sorted(found, key=lambda text: int(text.split()[1].rstrip(":")))


def tool_sources() -> list[tuple[Path, str, bool]]:
    """(file, module name, is a package) of every tool: the tool packages, `__main__`,
    and the scripts in benchmarks/ and docs/."""
    files = [PACKAGE / "__main__.py"]
    for tool in TOOLS:
        if (PACKAGE / tool).is_dir():
            files += sorted((PACKAGE / tool).rglob("*.py"))
    out = [(f, _module_name(f, ROOT), f.name == "__init__.py") for f in files]
    for folder in ("benchmarks", "docs"):
        out += [(f, f"{folder}.{f.stem}", False) for f in sorted((ROOT / folder).glob("*.py"))]
    return out


def test_tools_use_the_cores_public_names_only():
    problems = [f"{path.relative_to(ROOT)} {use}" for path, module, is_package in tool_sources()
                for use in private_uses(path.read_text(), module, is_package)]
    assert not problems, "tools using private names of the core:\n" + "\n".join(problems)


def test_the_public_name_check_sees_private_uses():
    source = """
from ..remaster import build, _pick_dtype
from ..engine import models as shared
from .. import weights
import vsremaster.engine.models as m
import vsremaster
from vsremaster.model._hidden import thing
from .config import _local                         # the tool's own: allowed
import os
os._exit(0)                                        # not ours: allowed
shared._shared
weights.__name__                                   # dunder: allowed
m._guard.acquire()
vsremaster.remaster._parts
"""
    assert private_uses(source, "vsremaster.bench.run", False) == [
        "line 2: imports vsremaster.remaster._pick_dtype",
        "line 7: imports the private module vsremaster.model._hidden",
        "line 11: uses vsremaster.engine.models._shared",
        "line 13: uses vsremaster.engine.models._guard",
        "line 14: uses vsremaster.remaster._parts",
    ]
