"""Issue 16 (configuration): each setting's default lives once, in portal/settings.py.
A `getattr(settings, "X", default)` elsewhere is a second default that can drift from
the first (STAFF_SESSION_IDLE_SECONDS had 0 in one place and 30 minutes in the other)."""

import ast
from pathlib import Path

import portal

ROOT = Path(portal.__file__).resolve().parent.parent
APP_CODE = ["portal", "consultations", "articles", "deploy", "bench"]


def getattr_defaults(path: Path) -> list[str]:
    """`getattr(settings, NAME, default)` calls in a module, as "path:line NAME"."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) == 3
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id == "settings"
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node.args[1])}")
    return found


def test_no_second_copy_of_a_settings_default():
    found = [hit for app in APP_CODE for path in sorted((ROOT / app).rglob("*.py")) for hit in getattr_defaults(path)]
    assert found == []
