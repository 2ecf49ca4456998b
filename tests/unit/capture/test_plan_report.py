"""The plan model: items from the core's plans, masked values, totals per kind, JSON."""

from __future__ import annotations

from datetime import date

from consumers.capture.plan_report import (
    Act,
    FieldChange,
    PlanItem,
    RunPlan,
    field_changes,
    item_of,
    link_item,
)
from consumers.domain.plan import (
    Archive,
    Create,
    Fields,
    NoChange,
    Plan,
    PushedState,
    Skip,
    Unarchive,
    Update,
)
from consumers.domain.relationships import Link, Relink, Unlink

OBSERVED: Fields = {"first_name": "Augusta", "email": "ADA@school.example", "year_group_id": 1007}


def test_an_update_lists_the_changed_fields_masked_and_no_unchanged_ones() -> None:
    plan = Plan((Update({"first_name": "Ada", "email": "ada@school.example"}),), None)
    item = item_of("student", "S1", plan, OBSERVED, 7)
    assert item == PlanItem(
        "student", "S1", Act.UPDATE, 7, (FieldChange("first_name", "A…", "A…"),)
    )


def test_each_write_names_its_action() -> None:
    create = Plan(
        (Create({"last_name": "Lovelace"}, {"attendance_start_date": "2024-09-01"}),), None
    )
    unarchive = Plan((Unarchive(), Update({"first_name": "Ada", "year_group_id": 1007})), None)
    archive = Plan((Archive(date(2026, 7, 17)),), None)
    made = item_of("student", "S1", create, {}, None)
    back = item_of("student", "S1", unarchive, {"first_name": "Ada"}, 7, reason="why")
    assert made is not None and made.action is Act.CREATE
    assert [c.name for c in made.changes] == ["attendance_start_date", "last_name"]
    assert back is not None and (back.action, back.reason) == (Act.UNARCHIVE, "why")
    assert [c.name for c in back.changes] == ["year_group_id"]
    assert item_of("student", "S1", archive, {}, 7) == PlanItem("student", "S1", Act.ARCHIVE, 7)
    adopted = item_of("parent", "p", Plan((Update({"title": "Dr"}),), None), {}, 8, adopted=True)
    assert adopted is not None and adopted.action is Act.ADOPT
    skipped = item_of("teacher", "17", Plan((Skip("no access"),), None), {}, None)
    assert skipped == PlanItem("teacher", "17", Act.SKIP, reason="no access")
    assert item_of("student", "S1", Plan((NoChange(),), PushedState()), {}, 7) is None


def test_links_show_the_relationship_as_it_is() -> None:
    made = link_item("p → S1", Link("Mother"), None, 3)
    changed = link_item("p → S1", Relink("Father"), "Other Guardian", 3)
    gone = link_item("p → S1", Unlink(), "Aunt", 3)
    assert made is not None and made.changes == (FieldChange("relationship", "—", "Mother"),)
    assert changed is not None and changed.changes[0].before == "Other Guardian"
    assert gone is not None and (gone.action, gone.changes[0].after) == (Act.UNLINK, "—")
    assert link_item("p → S1", NoChange(), "Mother", 3) is None


def test_totals_count_per_kind_and_action_with_unchanged_failed_and_all() -> None:
    plan = RunPlan()
    plan.add(PlanItem("student", "S1", Act.UPDATE, 1), "student")
    plan.add(PlanItem("student", "S2", Act.UPDATE, 2, error="refused"), "student")
    plan.add(PlanItem("link", "p → S1", Act.LINK, 3), "link")
    plan.add(PlanItem("teacher", "17", Act.HELD, 4), "teacher")
    plan.add(None, "student")
    plan.add(None, "parent")

    assert plan.totals() == {
        "student": {"update": 2, "failed": 1, "unchanged": 1},
        "parent": {"unchanged": 1},
        "teacher": {"held": 1},
        "link": {"link": 1},
        "all": {"update": 2, "link": 1, "held": 1, "failed": 1, "unchanged": 2},
    }
    assert plan.writes() == 3
    assert [item.isams_id for item in plan.failures] == ["S2"]
    document = plan.to_json()
    assert document["items"][1] == {
        "kind": "student",
        "isams_id": "S2",
        "action": "update",
        "managebac_id": 2,
        "fields": [],
        "reason": None,
        "error": "refused",
    }


def test_a_stand_in_id_of_a_dry_run_is_no_managebac_id() -> None:
    assert PlanItem("student", "S1", Act.CREATE, -1).to_json()["managebac_id"] is None


def test_field_changes_mask_both_sides() -> None:
    assert field_changes(
        {"birthday": "2014-12-10", "email": "a@b.c"}, {"birthday": "2014-12-11"}
    ) == (
        FieldChange("birthday", "####-##-##", "####-##-##"),
        FieldChange("email", "—", "a…@b…"),
    )
