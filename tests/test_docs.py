"""The documentation a user follows: README's first commands, its "Where next" list, and links that lead somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.unit

DOCS = [REPO / "README.md", REPO / "ARCHITECTURE.md", *sorted((REPO / "docs").glob("*.md"))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def without_code(text: str) -> str:
    return re.sub(r"```.*?```", "", text, flags=re.S)


def test_readme_starts_with_the_run_and_test_commands() -> None:
    lines = (REPO / "README.md").read_text().splitlines()
    commands = [line.strip() for line in lines[:12] if line.startswith("    ")]
    # .ci/run calls scripts/test; users copy these two lines first.
    assert commands[:2] == ["scripts/demo            # then, in another terminal: .venv/bin/dogmonitor watch",
                            "scripts/test"], commands
    assert "scripts/test" in (REPO / ".ci" / "run").read_text()


def test_readme_is_short_and_lists_where_to_go_next() -> None:
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200, "README.md is the first hour; reference goes to docs/"
    where = text.split("## Where next", 1)[1]
    for doc in ("configuration", "protocol", "integration", "behaviour", "media", "operations", "measurements"):
        assert f"(docs/{doc}.md)" in where, doc


def test_every_relative_link_in_the_docs_leads_to_a_file_and_heading_that_exist() -> None:
    anchors = {path.resolve(): {slug(h) for h in re.findall(r"^#+ (.*)$", without_code(path.read_text()), re.M)}
               for path in DOCS}
    broken = []
    for path in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", without_code(path.read_text())):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not checked offline
            file_part, _, fragment = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path.resolve()
            if not resolved.exists():
                broken.append(f"{path.name}: {target} (no such file)")
            elif fragment and resolved.suffix == ".md" and fragment not in anchors.get(resolved, set()):
                broken.append(f"{path.name}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_docs_pointed_to_by_messages_and_comments_exist() -> None:
    # Messages users read name these pages and headings.
    behaviour = (REPO / "docs" / "behaviour.md").read_text()
    assert "### Installing the YAMNet model without the mirror" in behaviour  # edge/audio/feature.py
    assert "## Licences" in (REPO / "docs" / "media.md").read_text()        # edge/media/encoder.py
    assert Path(REPO / "docs" / "configuration.md").is_file()               # edge/config.py unknown-key hint
