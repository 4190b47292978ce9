"""matmcl's own source files that a module runs: its import closure within the package, and a hash of them.

The closure is read from the source with `ast` (every `import` anywhere in a module counts, including the lazy ones
inside functions), so it never imports anything. It gives each DVC stage its code dependencies and each Dagster
asset and model folder its code version: a change to any file a stage runs, and only such a change, reruns it.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from matmcl.hashing import hash_files

PACKAGE = "matmcl"
PACKAGE_DIR = Path(__file__).resolve().parent


def module_file(module: str) -> Path | None:
    """The source file of a `matmcl...` module (a package's `__init__.py`), or None if there is none."""
    if module != PACKAGE and not module.startswith(f"{PACKAGE}."):
        return None
    relative = PACKAGE_DIR.joinpath(*module.split(".")[1:])
    for candidate in (relative.with_name(f"{relative.name}.py"), relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path, module: str) -> set[str]:
    """Names of the modules `path` imports (`from a import b` yields `a` and `a.b`; relative imports resolved)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


@cache
def import_closure(module: str) -> tuple[Path, ...]:
    """Every matmcl source file `module` runs: itself, the parent packages' `__init__.py` and, transitively,
    everything they import from matmcl. Sorted, relative to the repository root."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            path = module_file(prefix)
            if path is None or prefix in seen:
                continue
            seen[prefix] = path
            todo.extend(_imported_modules(path, prefix))
    root = PACKAGE_DIR.parent
    return tuple(sorted(path.relative_to(root) for path in seen.values()))


def code_version(module: str) -> str:
    """Hash of the source of `module`'s import closure: changes exactly when code that `module` runs changes."""
    root = PACKAGE_DIR.parent
    return hash_files((path.as_posix(), root / path) for path in import_closure(module))
