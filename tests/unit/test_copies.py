"""The product's design and its reference facts travel with the repository, as copies.

`docs/design.md` and `docs/reference/*.md` are the shared design documents, and
`tests/fixtures/managebac-v2-subset.yaml` the published ManageBac+ v2 subset, copied so a
clone holds everything a newcomer needs. Each copy's sha256 is recorded here, so changing
one is a deliberate act; where the shared originals sit beside the repository (`../shared`)
the copies must still be the same as them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
COPIES = {
    "docs/design.md": (
        "DESIGN.md",
        "81bac8afbcb5e79ed52edf51af7edf9b3d37e7575af4ca18b783a7d354d15b13",
    ),
    "docs/reference/isams-fields.md": (
        "reference/isams-fields.md",
        "163e647b05426c1b53af5052fb2acf8f8dbe8bbe3e29aa38b5245082ee9c06f7",
    ),
    "docs/reference/managebac-notes.md": (
        "reference/managebac-notes.md",
        "b87b3731f08e61a6d8c9992b509e626430a3a9ce32bf756081978cad105cd0b0",
    ),
    "docs/reference/kafka-local.md": (
        "reference/kafka-local.md",
        "47cba7728b236923dfe9b9b0c0c6e73a24a42800cb005a66a98d7d5f7afc8a8c",
    ),
    "tests/fixtures/managebac-v2-subset.yaml": (
        "reference/managebac-v2-subset.yaml",
        "633b1ec9c9c2b1ca2a2125e519fdb5f3ce614ad856b288cabfd807744d3a7592",
    ),
}


@pytest.mark.parametrize("copy", list(COPIES))
def test_the_copy_is_the_one_recorded(copy: str) -> None:
    _, recorded = COPIES[copy]
    assert hashlib.sha256((REPO / copy).read_bytes()).hexdigest() == recorded, (
        f"{copy} changed: copy the shared original over it again and record its sha256 here"
    )


@pytest.mark.parametrize("copy", list(COPIES))
def test_the_copy_still_matches_the_shared_original_where_it_is_beside_us(copy: str) -> None:
    original, _ = COPIES[copy]
    beside = [path for path in (SHARED / original,) if path.is_file()]
    assert all(path.read_bytes() == (REPO / copy).read_bytes() for path in beside), (
        f"../shared/{original} moved on: copy it over {copy} and record its sha256"
    )


def test_every_docs_path_a_comment_names_exists() -> None:
    """Comments point at docs/… inside the repository; each must be there."""
    named: set[str] = set()
    for folder in ("app", "consumers", "sim", "tests", "bench", "scripts"):
        for source in (REPO / folder).rglob("*.py"):
            text = source.read_text(encoding="utf-8")
            for part in text.split("docs/")[1:]:
                name = part.split()[0].rstrip(".,;:)`'\"")
                if name.endswith((".md", ".yaml")) and "*" not in name:
                    named.add(f"docs/{name}")
    assert named, "no comment names a document (the check has nothing to check)"
    missing = sorted(path for path in named if not (REPO / path).is_file())
    assert not missing, f"comments name documents that are not in the repository: {missing}"
