"""The import rules of the README's Architecture section, read from the source (no imports).

Every ``import`` statement of mlreg's own modules is parsed with ``ast``; imports under
``if TYPE_CHECKING:`` are ignored (they never run). The tests fail on a cycle between
modules, on an import the layering does not allow, and on start-up getting heavy again.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_project import MAPPED, ROOT

#: Each area of the code and the areas it may import (besides itself). The storage package is
#: what registry and tracking share; neither imports the other, and it imports neither.
ALLOWED: dict[str, set[str]] = {
    "mlreg.errors": set(),
    "mlreg.version": set(),
    "mlreg.schemas": set(),
    "mlreg.models": {"mlreg.credentials", "mlreg.errors", "mlreg.schemas", "mlreg.version"},
    "mlreg.uris": {"mlreg.errors"},
    "mlreg.credentials": set(),
    "mlreg.store": {"mlreg.credentials", "mlreg.errors", "mlreg.models", "mlreg.version"},
    "mlreg.config": {"mlreg.errors"},
    "mlreg.web": {"mlreg.errors"},
    "mlreg.pyfunc": {"mlreg.errors", "mlreg.models", "mlreg.uris"},
    "mlreg.registry": {"mlreg.errors", "mlreg.models", "mlreg.uris", "mlreg.store"},
    "mlreg.tracking": {"mlreg.errors", "mlreg.models", "mlreg.uris", "mlreg.store"},
    "mlreg.tensorflow": {
        "mlreg.errors",
        "mlreg.models",
        "mlreg.pyfunc",
        "mlreg.registry",
        "mlreg.store",
        "mlreg.tracking",
        "mlreg.uris",
        "mlreg.version",
    },
    "mlreg.serving": {
        "mlreg.config",
        "mlreg.errors",
        "mlreg.models",
        "mlreg.pyfunc",
        "mlreg.uris",
        "mlreg.version",
        "mlreg.web",
    },
    # The registry server stands on the services; it never imports the scoring server.
    "mlreg.server": {
        "mlreg.config",
        "mlreg.errors",
        "mlreg.models",
        "mlreg.registry",
        "mlreg.store",
        "mlreg.tracking",
        "mlreg.uris",
        "mlreg.version",
        "mlreg.web",
    },
    "mlreg.builder": {
        "mlreg.credentials",
        "mlreg.errors",
        "mlreg.models",
        "mlreg.uris",
        "mlreg.version",
    },
    # Batch scoring stands on pyfunc, reuses the server's payload decoding and the registry's
    # directory digest (to ship a model to Spark executors and check it there).
    "mlreg.batch": {
        "mlreg.errors",
        "mlreg.models",
        "mlreg.pyfunc",
        "mlreg.registry",
        "mlreg.serving",
        "mlreg.uris",
    },
    # The command line stands on everything.
    "mlreg.cli": {"*"},
    "mlreg": {"mlreg.version"},
}


def module_files() -> dict[str, Path]:
    """Every mlreg module by dotted name (package_dir maps registry/ to mlreg.registry ...)."""
    modules = {}
    for package, folder in MAPPED.items():
        base = ROOT / folder
        for path in base.rglob("*.py"):
            rel = path.relative_to(base).with_suffix("").parts
            if "migrations" in rel and rel[-1] != "env":
                continue  # Alembic revision scripts are data run by Alembic
            if rel[-1] == "__init__":
                rel = rel[:-1]
            if package == "mlreg" and rel and rel[0] in ("registry", "serving", "builder"):
                continue
            modules[".".join([package, *rel])] = path
    return modules


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, module: str, known: set[str]) -> set[str]:
    """The mlreg modules ``module`` imports (at any depth of its code, not for type checks)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parent = package.rsplit(".", child.level - 1)[0]
                    base = f"{parent}.{base}" if base else parent
                for alias in child.names:
                    # ``from package import submodule`` imports the submodule, not a name of
                    # the package (its __init__ runs either way, as for any import).
                    sub = f"{base}.{alias.name}"
                    found.add(sub if sub in known else base)
            visit(child)

    visit(tree)
    return {name for name in found if name in known and name != module}


def graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {module: imports_of(path, module, known) for module, path in files.items()}


def area(module: str) -> str:
    """The ALLOWED key a module belongs to (its longest matching prefix)."""
    matches = [a for a in ALLOWED if module == a or module.startswith(a + ".")]
    assert matches, f"{module} belongs to no area of ALLOWED; add it to the Architecture rules"
    return max(matches, key=len)


def test_every_module_is_in_an_area():
    for module in graph():
        area(module)


def test_imports_follow_the_layering():
    wrong = []
    for module, targets in graph().items():
        allowed = ALLOWED[area(module)]
        for target in targets:
            target_area = area(target)
            if target_area == area(module) or "*" in allowed:
                continue
            if target_area not in allowed:
                wrong.append(f"{module} imports {target} ({area(module)} -> {target_area})")
    assert not wrong, "imports the Architecture section does not allow:\n" + "\n".join(
        sorted(wrong)
    )


def test_registry_and_tracking_do_not_import_each_other():
    for module, targets in graph().items():
        for mine, theirs in (
            ("mlreg.registry", "mlreg.tracking"),
            ("mlreg.tracking", "mlreg.registry"),
        ):
            if area(module) == mine:
                assert not [t for t in targets if area(t) == theirs], module
        if area(module) == "mlreg.store":
            assert not [t for t in targets if area(t) in ("mlreg.registry", "mlreg.tracking")]


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            walk(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize(
    ("code", "forbidden"),
    [
        (
            "import mlreg.errors",
            ["sqlalchemy", "pandas", "numpy", "alembic", "PIL", "flask", "boto3"],
        ),
        ("import mlreg", ["sqlalchemy", "pandas", "numpy", "alembic", "PIL", "flask", "boto3"]),
        ("import mlreg.store.validation", ["sqlalchemy", "pandas", "numpy"]),
        ("import mlreg.cli", ["sqlalchemy", "pandas", "numpy", "flask", "docker", "boto3"]),
        ("import mlreg.registry.client, mlreg.tracking.client", ["boto3", "botocore"]),
        ("import mlreg.uris; mlreg.uris.resolve_model_uri", ["sqlalchemy"]),
        ("import mlreg.pyfunc", ["sqlalchemy", "tensorflow", "flask"]),
        ("import mlreg.serving.app", ["sqlalchemy", "tensorflow"]),
    ],
    ids=["errors", "mlreg", "validation", "cli", "clients", "uris", "pyfunc", "serving-app"],
)
@pytest.mark.process  # a fresh interpreter for each
def test_light_imports_stay_light(code, forbidden):
    probe = f"{code}; import sys; print(' '.join(sorted(sys.modules)))"
    loaded = set(subprocess.check_output([sys.executable, "-c", probe], text=True).split())
    assert not [m for m in forbidden if m in loaded], f"{code!r} imports {forbidden}"


@pytest.mark.process  # a fresh interpreter
def test_lazy_names_of_mlreg_resolve():
    code = (
        "import mlreg; missing = [n for n in mlreg.__all__ if getattr(mlreg, n, None) is None]; "
        "print(missing)"
    )
    assert subprocess.check_output([sys.executable, "-c", code], text=True).strip() == "[]"


def test_top_level_help_lists_each_command_with_its_own_summary():
    from mlreg.cli.main import COMMANDS, load_command

    for name, (_, summary) in COMMANDS.items():
        assert load_command(name).get_short_help_str(limit=200) == summary, name


def test_every_server_route_declares_its_permission(tmp_path):
    """No route of mlreg server without a declaration: the permission checks find them here."""
    from mlreg.server.api import ROUTES_KEY
    from mlreg.server.app import create_app
    from mlreg.server.settings import ServerSettings
    from mlreg.store.settings import StoreSettings

    app = create_app(ServerSettings(store=StoreSettings.for_home(tmp_path)))
    declared = app.extensions[ROUTES_KEY]
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint != "static"}
    assert endpoints == set(declared)
    app.extensions["mlreg.server"].close()
