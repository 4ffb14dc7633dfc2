"""The import graph of the package, read from the source (every import statement, those inside
functions included): no cycles between files, and layers that only point down.

    mdeberta.cli, mdeberta.demo, mdeberta.__main__        the command line and the demo (top)
    mdeberta.pipelines / vocab / train / eval             the stages
    mdeberta.*  (config, io, model, shards, command, ...)  the core (bottom)

The core imports no stage; a stage imports the core, its own modules and only the few other-stage
modules ALLOWED names; nothing imports the top. An import inside a function is a way to hide an
edge, so it is allowed only to keep a light entry point light (`mdeberta --help` above all) and
says so in a `# lazy: <reason>` comment just above it (or on its line).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("pipelines", "vocab", "train", "eval")
TOP = {"mdeberta.cli", "mdeberta.demo", "mdeberta.__main__"}
# Edges from one stage into another, each a deliberate part of the design.
ALLOWED = {
    # build-vocab draws its sample with the pipelines' Beam sampling job (the same α-sampler as
    # shard) and reads the clean corpus with the pipelines' paragraph reader
    ("mdeberta.vocab.build", "mdeberta.pipelines.sample_vocab"),
    ("mdeberta.vocab.build", "mdeberta.pipelines.paragraphs"),
    ("mdeberta.vocab.report", "mdeberta.pipelines.paragraphs"),
    # shard checks that the vocabulary fits the corpus with build-vocab's own measure
    ("mdeberta.pipelines.shard", "mdeberta.vocab.coverage"),
}


def _modules() -> dict[str, Path]:
    """Module name -> file, from the package-dir table of pyproject.toml."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_dir = pyproject["tool"]["setuptools"]["package-dir"]
    modules = {}
    for package, folder in package_dir.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            modules[name] = path
    return modules


MODULES = _modules()


def _is_main_block(node: ast.AST) -> bool:
    """`if __name__ == "__main__":` - runs only when the file is the program, once every import
    has finished, so its imports cannot form an import cycle."""
    test = node.test if isinstance(node, ast.If) else None
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def _project_module(name: str) -> str | None:
    """The project module an imported name lives in (the longest known prefix)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, ast.stmt, bool, bool]]:
    """(imported project module, statement, inside a function, inside a __main__ block)."""
    path = MODULES[module]
    found = []

    def visit(node, in_function, in_main):
        for child in ast.iter_child_nodes(node):
            function = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            main = in_main or _is_main_block(child)
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: from the package of this module
                    package = module if path.stem == "__init__" else module.rpartition(".")[0]
                    for _ in range(child.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{base}".rstrip(".")
                targets = [f"{base}.{alias.name}" for alias in child.names]
            else:
                visit(child, function, main)
                continue
            for target in targets:
                imported = _project_module(target) if target.startswith("mdeberta") else None
                if imported and imported != module:
                    found.append((imported, child, in_function, main))

    visit(ast.parse(path.read_text(), str(path)), False, False)
    return found


def _layer(module: str) -> str:
    if module in TOP:
        return "top"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else "core"


EDGES = {module: _imports(module) for module in MODULES}


def test_the_walk_sees_every_kind_of_import():
    """The walk finds imports inside functions and __main__ blocks, relative ones, and the
    modules of the package-dir folders (a test of the test: the graph is not empty)."""
    assert {"mdeberta.pipelines.clean", "mdeberta.train.run", "mdeberta.eval.xnli"} <= set(MODULES)
    edges = {
        (m, target, inner, main) for m, found in EDGES.items() for target, _, inner, main in found
    }
    assert ("mdeberta.cli", "mdeberta.command", False, False) in edges
    assert ("mdeberta.vocab.cli", "mdeberta.vocab.build", True, False) in edges
    assert ("mdeberta.pipelines.clean", "mdeberta.pipelines.cli", False, True) in edges


def test_no_import_cycles_between_files():
    graph = {m: {t for t, _, _, main in found if not main} for m, found in EDGES.items()}
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(module):
        state[module] = "open"
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycle = path[path.index(target) :] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_layers_point_down():
    wrong = []
    for module, found in EDGES.items():
        for target, _, _, _ in found:
            source, dest = _layer(module), _layer(target)
            if dest == "top" and source != "top":
                wrong.append(f"{module} -> {target}: nothing below the command line imports it")
            elif source == "core" and dest != "core":
                wrong.append(f"{module} -> {target}: the core imports no stage")
            elif source in STAGES and dest in STAGES and source != dest:
                if (module, target) not in ALLOWED:
                    wrong.append(f"{module} -> {target}: a stage importing another stage")
    assert not wrong, "\n".join(wrong)


def test_allowed_cross_stage_edges_still_exist():
    """ALLOWED is the list of such edges, not a licence: an edge that went is removed from it."""
    edges = {(m, target) for m, found in EDGES.items() for target, _, _, _ in found}
    assert ALLOWED <= edges, f"no longer imported, remove from ALLOWED: {ALLOWED - edges}"


def test_imports_inside_functions_say_why():
    missing = []
    for module, found in EDGES.items():
        lines = MODULES[module].read_text().splitlines()
        import_lines = {
            n for _, node, _, _ in found for n in range(node.lineno, node.end_lineno + 1)
        }
        for _, node, in_function, _ in found:
            if in_function and not _has_reason(lines, node.lineno, import_lines):
                missing.append(f"{MODULES[module].relative_to(ROOT)}:{node.lineno}")
    assert not missing, "imports inside functions without a `# lazy: <reason>` comment:\n" + (
        "\n".join(missing)
    )


def _has_reason(lines: list[str], lineno: int, import_lines: set[int]) -> bool:
    """A `# lazy:` comment on the import's line, or above it across comments, blank lines and
    the other imports of the same group."""
    if "# lazy:" in lines[lineno - 1]:
        return True
    n = lineno - 1
    while n >= 1:
        text = lines[n - 1].strip()
        if text.startswith("# lazy:"):
            return True
        if not (text == "" or text.startswith("#") or n in import_lines or _library_import(text)):
            return False
        n -= 1
    return False


def _library_import(text: str) -> bool:
    """A plain import of a library, part of the same group of imports."""
    return re.match(r"(import|from) [\w.]+", text) is not None and "mdeberta" not in text


def test_no_imports_by_name_strings():
    """importlib.import_module(name) hides an edge from readers and tools; resources.files of a
    bare stage name ("train") imports the user's own `train` package."""
    found = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            arg = node.args[0] if node.args else None
            if name in ("import_module", "__import__"):
                found.append(f"{module}:{node.lineno}: {name}")
            elif name == "files" and isinstance(arg, ast.Constant) and arg.value in STAGES:
                found.append(f"{module}:{node.lineno}: files({arg.value!r})")
    assert not found, found
