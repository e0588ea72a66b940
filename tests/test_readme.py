"""The README and the pages under docs/ point at code and files that exist: every
`flashviz...` name, every file path and every ``python -m`` module they mention resolves,
and every relative markdown link reaches a file (and a heading, where it names one). A
layout change must update the documentation. The README stays a short front page."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

from tests.support import ROOT

README_MAX_LINES = 350

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEXTS = {path.relative_to(ROOT).as_posix(): path.read_text() for path in DOCS}
README = TEXTS["README.md"]

NAME_RE = re.compile(r"`(flashviz\.[\w.]+)")
PATH_RE = re.compile(r"`((?:flashviz|tests|kernels)/[\w./-]+\.\w+)")
MODULE_RE = re.compile(r"python\s+-m\s+([\w.]+)")
FENCE_RE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN_RE = re.compile(r"`[^`]*`")
LINK_RE = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING_RE = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
NOT_A_MODULE = ("pip", "pytest", "streamlit", "http.server")


def _mentions(regex: re.Pattern[str]) -> list[pytest.param]:
    """One parameter per (document, mention), with an id such as `docs/api.md:flashviz.costs`."""
    return [
        pytest.param(doc, found, id=f"{doc}:{found}")
        for doc, text in TEXTS.items()
        for found in sorted(set(regex.findall(text)))
    ]


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


def _prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where brackets are not links."""
    return CODE_SPAN_RE.sub("", FENCE_RE.sub("", text))


def _anchors(text: str) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces to
    hyphens, a repeated heading numbered -1, -2, ..."""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in HEADING_RE.findall(FENCE_RE.sub("", text)):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _broken_links(text: str, page: Path) -> list[str]:
    """The relative links of `text` (a page at `page`) whose file or heading does not exist."""
    broken = []
    for target in LINK_RE.findall(_prose(text)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not this repository's
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.is_file() or not linked.is_relative_to(ROOT):
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked.read_text()):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    return broken


def test_the_docs_pages_exist() -> None:
    names = {path.name for path in DOCS[1:]}
    assert {"api.md", "app.md", "serving.md", "kernels.md", "gpu-timings.md"} <= names, names


def test_the_docs_mention_code_at_all() -> None:
    names = {name for text in TEXTS.values() for name in NAME_RE.findall(text)}
    paths = {path for text in TEXTS.values() for path in PATH_RE.findall(text)}
    modules = {module for text in TEXTS.values() for module in MODULE_RE.findall(text)}
    assert len(names) > 10 and len(paths) > 10 and len(modules) >= 3, (names, paths, modules)


@pytest.mark.parametrize(("doc", "name"), _mentions(NAME_RE))
def test_each_name_the_docs_mention_exists(doc: str, name: str) -> None:
    assert _resolves(name), f"{doc} mentions {name}, which does not exist"


@pytest.mark.parametrize(("doc", "path"), _mentions(PATH_RE))
def test_each_path_the_docs_mention_exists(doc: str, path: str) -> None:
    assert (ROOT / path).exists(), f"{doc} mentions {path}, which does not exist"


@pytest.mark.parametrize(("doc", "module"), _mentions(MODULE_RE))
def test_each_command_module_exists(doc: str, module: str) -> None:
    if module in NOT_A_MODULE:
        return
    assert importlib.util.find_spec(module) is not None, f"{doc}: no module {module} to run"


@pytest.mark.parametrize("doc", list(TEXTS))
def test_each_relative_link_reaches_a_file(doc: str) -> None:
    broken = _broken_links(TEXTS[doc], ROOT / doc)
    assert not broken, f"{doc} links to what does not exist: {broken}"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {target.partition("#")[0] for target in LINK_RE.findall(_prose(README))}
    unlinked = [doc for doc in TEXTS if doc != "README.md" and doc not in linked]
    assert not unlinked, f"the README links to no {unlinked}"


def test_the_readme_is_a_short_front_page() -> None:
    lines = len(README.splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines, at most {README_MAX_LINES}"


def test_a_missing_name_is_caught() -> None:
    assert not _resolves("flashviz.core.no_such_module")
    assert not _resolves("flashviz.core.costs.no_such_function")
    assert _resolves("flashviz.core.costs.attention_flops")
    # The whole way a page is read: a mention found by the pattern, and flagged.
    page = "uses `flashviz.core.costs.no_such_function(n)` and `flashviz.costs`"
    mentioned = NAME_RE.findall(page)
    assert mentioned == ["flashviz.core.costs.no_such_function", "flashviz.costs"]
    assert [name for name in mentioned if not _resolves(name)] == [mentioned[0]]


def test_a_broken_link_is_caught() -> None:
    page = ROOT / "docs" / "api.md"
    good = "[readme](../README.md#set-up) ![a](images/stepper.png) [top](#the-forward-pass)"
    assert _broken_links(good, page) == []
    bad = (
        "[gone](no_such_page.md) ![gone](images/no_such.png) [up](../README.md#no-such-heading)"
        " [outside](../../etc/hostname) `[code](not_a_link.md)`"
    )
    assert _broken_links(bad, page) == [
        "no_such_page.md: no such file",
        "images/no_such.png: no such file",
        "../README.md#no-such-heading: no heading #no-such-heading in README.md",
        "../../etc/hostname: no such file",
    ]


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run runs the whole suite the way the README tells a person to (pip's -q aside)."""
    command = re.search(r"```bash\n(pip install -r requirements-dev\.txt &&[^\n]+)\n```", README)
    assert command, "the README's test command is missing"
    ci = (ROOT / ".ci" / "run").read_text().replace("pip install -q -r", "pip install -r")
    assert command.group(1) in ci.splitlines()
