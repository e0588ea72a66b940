"""Install the oldest versions the requirement files allow into a fresh virtual environment
and run the fast tier there: every floor (``>=``) must be a version the code works with.

    python tests/tools/check_floors.py                 # the floors, then -m unit
    python tests/tools/check_floors.py --tiers "unit or app" --keep /tmp/floors
    python tests/tools/check_floors.py --set streamlit==1.52.0   # try another version

Each requirement ``name>=X`` is installed as ``name==X``; pins (``==``) stay as they are.
What the requirements do not name (their own dependencies) pip resolves as usual. The
environment also gets a Streamlit older than the floor, in which ``app.py`` must say what
to upgrade instead of failing with a traceback.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILES = ("requirements.txt", "requirements-gpu.txt", "requirements-dev.txt")
FLOOR = re.compile(r"^(?P<name>[A-Za-z0-9_.\[\],-]+?)\s*>=\s*(?P<version>[^\s;,#]+)")


def floors(files: tuple[str, ...] = FILES) -> dict[str, str]:
    """Requirement name -> the line to install, floors pinned, markers kept."""
    out: dict[str, str] = {}
    for name in files:
        for raw in (ROOT / name).read_text().splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line or line.startswith("-r"):
                continue
            key = re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0].lower()
            out[key] = FLOOR.sub(r"\g<name>==\g<version>", line)
    return out


def run(cmd: list[str], cwd: Path | None = None) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=cwd)


# `streamlit run app.py` in Chromium: the page shows the message and no exception box
ON_SCREEN = """
from playwright.sync_api import sync_playwright
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, streamlit_server
from tests.browser.helpers import EXCEPTION, wait_for_text
with streamlit_server() as url, sync_playwright() as p:
    page = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS).new_page()
    page.goto(url)
    wait_for_text(page, "pip install -U", timeout_ms=60_000)
    assert page.locator(EXCEPTION).count() == 0
    print("on screen:", page.inner_text("[data-testid='stAlertContentError']"))
"""


def old_streamlit_says_what_to_upgrade(python: Path, version: str) -> None:
    """``app.py`` under a Streamlit older than the floor: a message, not a traceback."""
    run([str(python), "-m", "pip", "install", "-q", f"streamlit=={version}"])
    run([str(python), "-c", ON_SCREEN], cwd=ROOT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="build the environment here and keep it")
    parser.add_argument("--tiers", default="unit", help="pytest -m expression (default: unit)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME==VERSION",
                        help="install this version instead of the floor (repeatable)")  # fmt: skip
    parser.add_argument("--old-streamlit", default="1.50.0",
                        help="a Streamlit older than the floor, for app.py's message")  # fmt: skip
    args = parser.parse_args()

    wanted = floors()
    for pin in args.set:
        wanted[re.split(r"[<>=!~\[]", pin, maxsplit=1)[0].lower()] = pin
    with tempfile.TemporaryDirectory() as tmp:
        env = args.keep or Path(tmp) / "floors"
        venv.create(env, with_pip=True, clear=True)
        python = env / "bin" / "python"
        run([str(python), "-m", "pip", "install", "-q", *wanted.values()])
        run([str(python), "-m", "pip", "freeze"])
        run([str(python), "-m", "ruff", "check", "."], cwd=ROOT)
        run([str(env / "bin" / "lint-imports")], cwd=ROOT)
        run([str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "auto",
             "-m", args.tiers], cwd=ROOT)  # fmt: skip
        old_streamlit_says_what_to_upgrade(python, args.old_streamlit)
    print("the floors install and pass:", ", ".join(wanted.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
