"""The library as a package people depend on: a version, a README and a CHANGELOG that say it,
a public API that imports, and no stack output or tool inside it."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import app_platform

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = ROOT / "platform"
PACKAGE = PLATFORM / "app_platform"


def project(folder: Path) -> dict:
    return tomllib.loads((folder / "pyproject.toml").read_text())["project"]


def test_the_version_is_one_and_the_changelog_describes_it():
    meta = project(PLATFORM)
    assert meta["version"] == app_platform.__version__ == "0.3.0"
    assert (PLATFORM / meta["readme"]).is_file()
    releases = re.findall(r"^## (\S+)", (PLATFORM / "CHANGELOG.md").read_text(), re.M)
    assert releases[0] == meta["version"]
    assert (PACKAGE / "py.typed").is_file()


def test_the_tools_depend_on_this_release_and_pin_the_sdk_exactly():
    dependencies = project(ROOT / "tools")["dependencies"]
    assert f"app-platform=={app_platform.__version__}" in dependencies
    assert [d for d in dependencies if d.startswith("pulumi")] == ["pulumi==3.272.0"]


def test_every_public_name_exists_and_is_documented_in_the_readme():
    readme = (PLATFORM / "README.md").read_text()
    missing = [name for name in app_platform.__all__ if not hasattr(app_platform, name)]
    assert missing == []
    undocumented = [name for name in app_platform.__all__ if f"`{name}`" not in readme]
    assert undocumented == []


def _calls_and_imports(path: Path) -> tuple[list[str], list[str]]:
    tree = ast.parse(path.read_text())
    calls = [
        ast.unparse(node.func)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("export")
    ]
    imports = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports += [alias.name for alias in node.names]
    return calls, imports


def test_the_library_exports_nothing_and_holds_no_tool():
    for path in sorted(PACKAGE.rglob("*.py")):
        calls, imports = _calls_and_imports(path)
        assert calls == [], f"{path.relative_to(ROOT)} exports stack outputs: {calls}"
        assert not [i for i in imports if i.startswith("app_platform_tools")], path
    assert not [p.stem for p in PACKAGE.glob("*.py") if p.stem in {"offline", "plan", "hosts"}]
