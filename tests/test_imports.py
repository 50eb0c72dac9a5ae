"""The package's imports run one way: ``gen`` -> ``sim`` -> ``hdl`` (and ``tb`` -> ``sim``,
``hdl``), with no circle of imports inside a folder.

The test reads every module's ``import`` statements (with :mod:`ast`, also those inside
functions) rather than importing anything, so a reverse edge is found even where it would
import without error.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: folder -> the folders its modules may import from
ALLOWED = {
    "boards": {"boards"},
    "hdl": {"hdl"},
    "sim": {"sim", "hdl", "boards"},
    "gen": {"gen", "sim", "hdl", "boards"},
    "tb": {"tb", "sim", "hdl", "boards"},
}


def _module_of(path: Path) -> tuple[str, bool]:
    """The dotted module name (under ``ternforge``) of ``path``, and whether it is a
    package's ``__init__``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if package else parts), package


def _imports(path: Path, modules) -> set[str]:
    """The modules of ``modules`` (dotted, without ``ternforge.``) that ``path`` imports:
    ``from package import module`` is an edge to the module, ``from module import name``
    one to the module."""
    module, package = _module_of(path)
    base = module.split(".") if package else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = ["ternforge", *base][:len(base) + 2 - node.level]
                target = ".".join(parent + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{alias.name}" if f"{target}.{alias.name}".removeprefix(
                "ternforge.") in modules else target for alias in node.names]
        else:
            continue
        for name in names:
            if name.startswith("ternforge."):
                found.add(name.removeprefix("ternforge."))
            elif name.split(".")[0] == "tb":
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    """Module -> the modules of the tree it imports (names that are not modules, such as
    ``from .x import function``, are dropped)."""
    modules = {}
    for folder in ALLOWED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            modules[_module_of(path)[0]] = path
    return {name: {target for target in _imports(path, modules)
                   if target in modules and target != name}
            for name, path in modules.items()}


def test_imports_run_one_way():
    reverse = sorted(f"{module} imports {target}" for module, targets in _graph().items()
                     for target in targets
                     if target.split(".")[0] not in ALLOWED[module.split(".")[0]])
    assert not reverse, "reverse imports:\n" + "\n".join(reverse)


def test_no_import_circles():
    graph = _graph()
    circles, state = [], {}

    def visit(module, stack):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                circles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target, stack + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not circles, "import circles:\n" + "\n".join(circles)
