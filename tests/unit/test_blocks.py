"""Which rights a school's changes need: a school mapping grades reads the year groups."""

from __future__ import annotations

from consumers.blocks import NEEDED, missing_rights_block, needed_rights


def test_a_school_with_fixed_year_groups_needs_no_year_group_right() -> None:
    every_right = frozenset().union(*NEEDED.values())
    assert missing_rights_block(every_right, needed_rights(uses_grades=False)) is None


def test_a_school_mapping_grades_is_blocked_for_students_without_the_year_group_right() -> None:
    every_right = frozenset().union(*NEEDED.values())
    block = missing_rights_block(every_right, needed_rights(uses_grades=True))
    assert block is not None
    assert block.kinds == frozenset({"student"})  # staff and contacts still flow
    assert "year_groups/index" in block.reason
    assert missing_rights_block(every_right | {"year_groups/index"}, needed_rights(True)) is None
