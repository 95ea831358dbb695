"""Which app may import which: the line docs/architecture.md draws between
sites and environments, kept by reading the imports of every module."""

import ast
from pathlib import Path

APPS = Path(__file__).resolve().parent.parent / "apps"


def imported_modules(app: str):
    for path in (APPS / app).rglob("*.py"):
        if "remote" in path.parts:
            continue  # node-side programs import nothing of the panel
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                yield path.relative_to(APPS.parent), node.module
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    yield path.relative_to(APPS.parent), alias.name


def test_environments_read_only_the_site_model():
    # A site is built from environments (sites' services and jobs call environments');
    # the other way round would tie the two into one.
    crossing = [(str(path), module) for path, module in imported_modules("environments")
                if module.startswith("apps.sites") and module != "apps.sites.models"]
    assert crossing == []


def test_the_site_model_stands_alone():
    site_models = [module for path, module in imported_modules("sites")
                   if path.name == "models.py" and module.startswith("apps.environments")]
    assert site_models == []
