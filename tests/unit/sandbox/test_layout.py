"""The sandbox is dev and test tooling: it imports nothing from OfficeFlow, its modules import each other
without cycles, every entry point starts, and it seeds the groups of OfficeFlow's own group mapping."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from include.officeflow.identity import DEFAULT_GROUPS_FILE, load_group_mapping
from sandbox.groups import DEFAULT_GROUPS_FILE as SANDBOX_GROUPS_FILE
from sandbox.groups import GroupFileError, managed_groups
from tests.harness.environment import REPO_ROOT

SANDBOX = REPO_ROOT / "sandbox"
PRODUCT = ("include", "operators", "plugins", "dags", "tests")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (``from a.b import c`` counts ``a.b.c`` when that
    is a module of the sandbox, else ``a.b``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            assert node.module is not None
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


MODULES = {_module_name(path): path for path in sorted(SANDBOX.rglob("*.py"))}


def test_sandbox_imports_nothing_from_the_product() -> None:
    offenders = {name: sorted(i for i in _imports(path) if i.split(".")[0] in PRODUCT)
                 for name, path in MODULES.items()}
    assert {name: found for name, found in offenders.items() if found} == {}
    code = ("import importlib, sys\n"
            f"for name in {sorted(MODULES)!r}:\n"
            "    if not name.endswith('__main__'): importlib.import_module(name)\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {PRODUCT!r}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_sandbox_has_no_import_cycles() -> None:
    graph = {name: {i for i in _imports(path) if i in MODULES and i != name} for name, path in MODULES.items()}
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            assert state.get(target) != "open", f"import cycle: {' -> '.join([*trail, name, target])}"
            if target not in state:
                visit(target, [*trail, name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    # Each part of a vendor package imports its shared helpers, never the package that mounts it.
    for vendor in ("google", "microsoft"):
        for part in ("common", "oauth", "directory", "calendar"):
            assert f"sandbox.{vendor}" not in graph[f"sandbox.{vendor}.{part}"]
        assert graph[f"sandbox.{vendor}.common"] <= {"sandbox.core"}


@pytest.mark.parametrize("module", ["sandbox", "sandbox.credentials", "sandbox.email.smtp_sink",
                                    "sandbox.bamboohr.sender"])
def test_entry_points_start(module: str) -> None:
    result = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_seeded_groups_are_those_of_the_group_mapping(tmp_path: Path) -> None:
    assert SANDBOX_GROUPS_FILE == DEFAULT_GROUPS_FILE
    mapping = load_group_mapping(DEFAULT_GROUPS_FILE)
    for provider in ("google", "microsoft", "okta"):
        assert managed_groups(provider) == mapping.of(provider).managed()
        assert managed_groups(provider)
    other = tmp_path / "groups.yaml"
    other.write_text("okta:\n  all: [Staff]\n  roles:\n    Boss: [Bosses, Staff]\n")
    assert managed_groups("okta", other) == {"Staff", "Bosses"}
    assert managed_groups("google", other) == set()
    other.write_text("okta:\n  all: Staff\n")
    with pytest.raises(GroupFileError):
        managed_groups("okta", other)
