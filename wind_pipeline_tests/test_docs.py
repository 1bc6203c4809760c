"""The rules are written in the repository and cited from it (docs/rules.md)."""

from __future__ import annotations

import re
from pathlib import Path

from wind_pipeline import cli

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "docs" / "rules.md"
SKIPPED_DIRS = {".git", ".venv", ".wind", "node_modules", "__pycache__"}
CITED = ("*.py", "*.md", "*.toml", "*.yaml", "*.yml", "*.cfg", "*.ini", "Makefile", "Dockerfile")


def repository_files() -> list[Path]:
    found = []
    for pattern in CITED:
        found += [
            path
            for path in REPO.rglob(pattern)
            if not SKIPPED_DIRS.intersection(path.relative_to(REPO).parts)
        ]
    return found


def test_no_file_cites_a_contract_outside_the_repository():
    """A rule is cited by its README section or docs/ page, never by a SPEC section."""
    citation = re.compile(r"SPEC\s*(§|section\s+\d)")
    citing = [
        f"{path.relative_to(REPO)}:{number}"
        for path in repository_files()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        if citation.search(line)
    ]
    assert citing == []


def test_the_exit_codes_page_lists_every_code_wind_etl_has():
    section = RULES.read_text().split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| (\d+) \| (.+) \|$", section, flags=re.MULTILINE))
    documented = {0, cli.EXIT_INTERNAL, cli.EXIT_INTERRUPTED} | {c for _, c, _ in cli.EXIT_CODES}
    assert {int(code) for code in rows} == documented
    for _, code, text in cli.EXIT_CODES:
        assert rows[str(code)].replace("`", "").startswith(text), code


def test_links_into_docs_name_a_heading_that_exists():
    links = re.findall(r"\(docs/([\w.-]+\.md)(?:#([\w-]+))?\)", (REPO / "README.md").read_text())
    assert links
    for page, anchor in links:
        headings = re.findall(r"^#+ (.+)$", (REPO / "docs" / page).read_text(), re.MULTILINE)
        slugs = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
        assert not anchor or anchor in slugs, (page, anchor)
