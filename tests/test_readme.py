"""The README points at code that exists: every `flashviz...` name, every file path and every
``python -m`` module it mentions resolves (a layout change must update the README)."""

from __future__ import annotations

import importlib
import importlib.util
import re

import pytest

from tests.support import ROOT

README = (ROOT / "README.md").read_text()
NAMES = sorted(set(re.findall(r"`(flashviz\.[\w.]+)", README)))
PATHS = sorted(set(re.findall(r"`((?:flashviz|tests|kernels)/[\w./-]+\.\w+)", README)))
MODULES = sorted(set(re.findall(r"python -m ([\w.]+)", README)))


def _resolves(dotted: str) -> bool:
    parts = dotted.rstrip(".").split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def test_the_readme_mentions_code_at_all() -> None:
    assert len(NAMES) > 10 and len(PATHS) > 10 and len(MODULES) >= 3, (NAMES, PATHS, MODULES)


@pytest.mark.parametrize("name", NAMES)
def test_each_name_the_readme_mentions_exists(name: str) -> None:
    assert _resolves(name), f"README mentions {name}, which does not exist"


@pytest.mark.parametrize("path", PATHS)
def test_each_path_the_readme_mentions_exists(path: str) -> None:
    assert (ROOT / path).exists(), f"README mentions {path}, which does not exist"


@pytest.mark.parametrize("module", MODULES)
def test_each_command_module_exists(module: str) -> None:
    if module in ("pip", "pytest", "streamlit", "http.server"):
        return
    assert importlib.util.find_spec(module) is not None, f"python -m {module}: no such module"


def test_a_missing_name_is_caught() -> None:
    assert not _resolves("flashviz.core.no_such_module")
    assert not _resolves("flashviz.core.costs.no_such_function")
    assert _resolves("flashviz.core.costs.attention_flops")


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run runs the whole suite the way the README tells a person to (pip's -q aside)."""
    command = re.search(r"```bash\n(pip install -r requirements-dev\.txt &&[^\n]+)\n```", README)
    assert command, "the README's test command is missing"
    ci = (ROOT / ".ci" / "run").read_text().replace("pip install -q -r", "pip install -r")
    assert command.group(1) in ci.splitlines()
