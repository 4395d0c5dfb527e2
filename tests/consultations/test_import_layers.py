"""Issue 16 (boundaries): the outbox does not import the Celery tasks module that
imports it. consultations.tasks is the top layer (the worker's and beat's entry
point, importing the sweep, duty, drafts and the outbox); nothing under it reaches
back to it, not even through an import inside a function."""

import ast
from pathlib import Path

import consultations

ROOT = Path(consultations.__file__).resolve().parent.parent
APPS = ("consultations", "portal", "articles")


def imports_of(path: Path) -> set[str]:
    """Every project module `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in APPS}


def project_graph() -> dict[str, set[str]]:
    modules = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts): path
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts
    }
    return {name: imports_of(path) & set(modules) for name, path in modules.items()}


def reaches(graph, start: str, goal: str) -> list[str] | None:
    """A chain of imports from `start` to `goal`, or None."""
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop()
        for following in sorted(graph.get(path[-1], ())):
            if following == goal:
                return [*path, goal]
            if following not in seen:
                seen.add(following)
                paths.append([*path, following])
    return None


def test_nothing_the_tasks_import_imports_the_tasks():
    graph = project_graph()
    assert "consultations.notifications" in graph["consultations.tasks"]
    cycles = {name: reaches(graph, name, "consultations.tasks") for name in graph["consultations.tasks"]}
    assert {name: chain for name, chain in cycles.items() if chain} == {}


def test_the_outbox_tasks_keep_their_names():
    """Names are in messages already queued and in the beat schedule."""
    from consultations import tasks

    assert tasks.send_notification.name == "consultations.tasks.send_notification"
    assert tasks.send_notifications.name == "consultations.tasks.send_notifications"
    assert tasks.resend_pending_notifications.name == "consultations.tasks.resend_pending_notifications"
