"""The README and docs/: they describe the kit as it is, their links lead somewhere, the README
stays short enough for a first day, and the figures it gives about the assignments are the
course's own.

Everything here reads text (and the catalog of exercises, which reads the source notebooks'
metadata), so the file runs in well under a second.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_MAX_LINES = 250


def pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


# Words that tell the kit's history instead of what it is: "(issue 11)", "no longer charges",
# "(was about 4 hours)", "it used to". Code blocks are checked too: no phrase here is needed in one.
HISTORY = [re.compile(r"\bissue \d+", re.IGNORECASE),
           re.compile(r"\bno longer\b", re.IGNORECASE),
           re.compile(r"\(was ", re.IGNORECASE),
           re.compile(r"\bused to\b", re.IGNORECASE)]

FENCED = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
INLINE_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)   # http:, https:, mailto:, ...


def prose(text: str) -> str:
    """The text without code: fenced blocks and inline code spans (a `x[0](y)` is no link)."""
    return INLINE_CODE.sub("", FENCED.sub("", text))


def relative_links(text: str) -> list[str]:
    """The link targets of a Markdown page that point into the repository, anchors dropped."""
    text = prose(text)
    targets = INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)
    found = []
    for target in targets:
        if EXTERNAL.match(target) or target.startswith("#"):
            continue
        found.append(target.split("#", 1)[0])
    return found


@pytest.mark.parametrize("page", pages(), ids=page_id)
def test_no_history(page):
    """Does the page describe the kit as it is, with no issue numbers or "no longer"/"(was"?"""
    lines = page.read_text().splitlines()
    found = [f"{page_id(page)}:{number}: {line.strip()}"
             for number, line in enumerate(lines, 1)
             for pattern in HISTORY if pattern.search(line)]
    assert not found, "history in the docs (describe the kit as it is):\n" + "\n".join(found)


@pytest.mark.parametrize("page", pages(), ids=page_id)
def test_relative_links_lead_to_files(page):
    """Does every relative link of the page lead to a file or folder of the repository?"""
    broken = [target for target in relative_links(page.read_text())
              if not (page.parent / target).exists()]
    assert not broken, f"{page_id(page)} links to what does not exist: {broken}"


def test_the_link_finder_finds_links():
    """The checker itself: inline and reference links, anchors dropped, code and URLs skipped."""
    text = ("See [a](docs/a.md#part) and [b](../b.md), [c](https://x.org/c.md), [d](#top),\n"
            "`[e](not/a/link.md)`\n```\n[f](in/a/block.md)\n```\n[g]: docs/g.md\n")
    assert relative_links(text) == ["docs/a.md", "../b.md", "docs/g.md"]


def test_readme_is_short_enough_for_a_first_day():
    """Is the README under 250 lines (what does not fit goes to docs/)?"""
    count = len(README.read_text().splitlines())
    assert count < README_MAX_LINES, f"README.md has {count} lines; move detail into docs/"


def test_readme_links_every_docs_page():
    """Can a reader reach every page of docs/ from the README?"""
    linked = {(ROOT / target).resolve() for target in relative_links(README.read_text())}
    missing = [page_id(p) for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert not missing, f"README.md does not link: {missing}"


def test_readme_assignment_table_matches_the_course():
    """Are the exercises and points the README's assignment table gives the course's own
    (`mnistkit exercises` counts the same)?"""
    from mnistkit import catalog

    rows = {}
    for line in README.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`(a\d_\w+)`", cells[0]) if cells else None
        if match:
            rows[match.group(1)] = cells[-2:]
    exercises = catalog.load()
    assert set(rows) == set(catalog.assignments())
    for assignment, (count_cell, points_cell) in rows.items():
        mine = [ex for ex in exercises if ex.assignment == assignment]
        auto = [ex for ex in mine if ex.kind == "auto"]
        count = f"{len(mine)} ({len(auto)} auto)"
        points = f"{sum(ex.points for ex in mine):g} ({sum(ex.points for ex in auto):g} auto)"
        assert (count_cell, points_cell) == (count, points), assignment
