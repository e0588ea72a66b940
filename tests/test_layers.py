"""The package's layers as a person meets them: ``import flashviz`` (and every module outside
``flashviz.app``) loads no streamlit; the README's tree names every folder of the package.

The import rules between layers are import-linter contracts (pyproject.toml), checked by
``lint-imports`` in the README's test command; this file checks what that cannot: what a
fresh interpreter actually loads.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import flashviz
from tests.support import ROOT

LAYERS = ("core", "lab", "io", "figures", "gpu", "perf", "classroom", "app")


def _loads_streamlit(code: str) -> bool:
    probe = code + "\nimport sys\nprint('streamlit' in sys.modules)\n"
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return run.stdout.strip().splitlines()[-1] == "True"


def test_import_flashviz_loads_no_streamlit() -> None:
    assert not _loads_streamlit("import flashviz")


def test_no_module_outside_the_app_loads_streamlit() -> None:
    names = [
        m.name
        for m in pkgutil.walk_packages(flashviz.__path__, "flashviz.")
        if not m.name.startswith("flashviz.app") and not m.name.endswith("__main__")
    ]
    assert len(names) > 40, names  # the walk found the package
    assert not _loads_streamlit("\n".join(f"import {n}" for n in names))


def test_the_app_does_load_streamlit() -> None:
    """The probe can see streamlit: the layer that must import it does."""
    assert _loads_streamlit("import flashviz.app.navigation")


def test_the_package_folders_are_the_layers_and_the_readme_names_each() -> None:
    folders = sorted(p.name for p in (ROOT / "flashviz").iterdir() if (p / "__init__.py").is_file())
    assert folders == sorted(LAYERS)
    readme = (ROOT / "README.md").read_text()
    tree = readme.split("## Architecture", 1)[1].split("```", 2)[1]
    for layer in LAYERS:
        assert f"\n  {layer}/ " in tree, f"the README's tree has no line for {layer}/"
    top = sorted(p.name for p in (ROOT / "flashviz").glob("*.py"))
    assert top == ["__init__.py", "bench.py", "masks.py"], top  # the top stays small
    for module in top[1:]:
        head = tree.split("\n  core/", 1)[0]  # the package's own lines, before its layers
        assert f"{module} " in head, f"the README's tree does not name {module}"
