"""The type hints hold: mypy over the package and the browser tests' pages and helpers
(``[tool.mypy]`` in pyproject.toml), run as a test so that it checks beside the others."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import ROOT


@pytest.mark.timeout(240)
def test_mypy_finds_no_type_errors() -> None:
    """Incremental: a warm ``.mypy_cache`` makes a rerun take seconds."""
    done = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=230
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert done.stdout.startswith("Success: no issues found"), done.stdout


def test_a_type_error_is_caught(tmp_path) -> None:
    """The checker is real: a function that returns a str where it promises an int fails."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f() -> int:\n    return 'one'\n")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", str(bad)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1 and "Incompatible return value type" in done.stdout, done.stdout
