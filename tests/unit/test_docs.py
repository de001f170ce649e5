"""The docs state the current truth: the generated configuration reference is fresh, every relative link and
anchor resolves, every repository path they cite exists, and the README stays short."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labctl.config import reference

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
USERS_OWN = {"inventories/lab"}  # where users put their inventory: not in the repository
CITED = re.compile(r"`((?:labctl|playbooks|templates|inventories|scripts|tests|benchmarks)/[^`\s]*)`")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(m) for m in re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.M)}


def test_configuration_reference_is_generated_from_the_keys():
    committed = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == reference.markdown(), f"docs/configuration.md is stale: run `{reference.COMMAND}`"


def test_readme_is_short():
    assert (REPO / "README.md").stat().st_size <= 10 * 1024


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_and_anchors_resolve(doc: Path):
    broken = []
    for target in LINK.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists() or (anchor and anchor not in anchors(path)):
            broken.append(target)
    assert broken == [], f"{doc.name}: links that do not resolve"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_cited_repository_paths_exist(doc: Path):
    missing = [
        cited
        for cited in CITED.findall(doc.read_text(encoding="utf-8"))
        if not re.search(r"[<*…{]", cited)
        and cited not in USERS_OWN
        and not (REPO / cited.rstrip("/")).exists()
    ]
    assert missing == [], f"{doc.name} cites paths that do not exist"
