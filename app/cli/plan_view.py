"""Plans and drift reports as tables for people (rich), or as JSON for scripts.

The model is consumers/capture/plan_report.py's; its values arrive masked. A plan (dry run)
lists every record that would change or is skipped; a drift report (a run that wrote) lists
what was repaired, refused or held, and counts the skips (the dry run lists them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from consumers.capture.backfill import BackfillReport
from consumers.capture.lookalikes import PossibleDuplicate
from consumers.capture.plan_report import Act, PlanItem, RunPlan
from consumers.capture.reconcile import ReconcileReport

_STYLE = {
    Act.CREATE: "green",
    Act.ADOPT: "cyan",
    Act.UPDATE: "yellow",
    Act.UNARCHIVE: "green",
    Act.ARCHIVE: "red",
    Act.LINK: "green",
    Act.RELINK: "yellow",
    Act.UNLINK: "red",
    Act.HELD: "magenta",
    Act.SKIP: "dim",
}


def print_json(console: Console, document: Mapping[str, Any]) -> None:
    """Write one JSON document, as is (no markup, no wrapping), for scripts."""
    console.out(json.dumps(document, indent=2, ensure_ascii=False), highlight=False)


def totals_table(plan: RunPlan, title: str = "Totals") -> Table:
    """Count per kind of record (rows) and action (columns)."""
    totals = plan.totals()
    columns = [
        name
        for name in (*[act.value for act in Act], "failed", "unchanged")
        if name in totals["all"]
    ]
    table = Table(title=title, title_justify="left")
    table.add_column("kind")
    for name in columns:
        table.add_column(name, justify="right")
    for kind, counted in totals.items():
        style = "bold" if kind == "all" else None
        table.add_row(kind, *[str(counted.get(name, 0) or "") for name in columns], style=style)
    return table


def items_table(items: Iterable[PlanItem], title: str) -> Table:
    """One line per record: kind, iSAMS id, action, ManageBac+ id, fields, reason."""
    table = Table(title=title, title_justify="left", show_lines=False)
    for name in ("kind", "iSAMS id", "action", "ManageBac+ id", "fields (masked)", "reason"):
        table.add_column(name, overflow="fold")
    for item in items:
        reason = Text(item.reason or "")
        if item.error is not None:
            reason.append(("; " if item.reason else "") + item.error, style="bold red")
        table.add_row(
            item.kind,
            item.isams_id,
            Text(item.action.value, style=_STYLE[item.action]),
            _managebac_id(item),
            _fields(item),
            reason,
        )
    return table


def duplicates_table(duplicates: Iterable[PossibleDuplicate]) -> Table:
    table = Table(title="Possible duplicates (not managed by this service; left as they are)")
    for name in ("kind", "ManageBac+ id", "name", "e-mail", "looks like", "because"):
        table.add_column(name)
    for found in duplicates:
        like = f"{found.like_isams_id} (ManageBac+ {found.like_managebac_id or 'new'})"
        archived = " (archived)" if found.archived else ""
        table.add_row(
            found.kind, f"{found.managebac_id}{archived}", found.name, found.email, like, found.rule
        )
    return table


def reconcile_view(report: ReconcileReport) -> RenderableType:
    """The dry run's plan, or the drift report of a run that wrote."""
    parts: list[RenderableType] = []
    head = "Reconcile plan (dry run: nothing written)" if report.dry_run else "Drift report"
    parts.append(Text(f"{head} for {report.school}, run {report.run_id}", style="bold"))
    parts.append(totals_table(report.plan))
    if report.dry_run:
        listed = report.plan.items
        title = "Plan: what a run would do"
    else:
        listed = [item for item in report.plan.items if item.action is not Act.SKIP]
        title = "Repaired (iSAMS wins), refused and held"
    parts.append(items_table(listed, title) if listed else Text("No drift: nothing to repair."))
    if report.duplicates:
        parts.append(duplicates_table(report.duplicates))
    guard = f"Removals guard: {report.decision.reason}"
    parts.append(Text(guard, style="bold magenta" if report.held else "dim"))
    parts.append(Text(report.summary()))
    return Group(*parts)


def backfill_plan_view(report: BackfillReport) -> RenderableType:
    """A backfill dry run: what the consumers would do with each change it would queue."""
    parts: list[RenderableType] = [
        Text(f"Backfill plan (dry run: nothing queued), run {report.run_id}", style="bold")
    ]
    if report.plan is not None:
        parts.append(totals_table(report.plan))
        if report.plan.items:
            parts.append(items_table(report.plan.items, "Plan: what the consumers would do"))
    parts.append(Text(report.summary()))
    return Group(*parts)


def backfill_json(report: BackfillReport) -> dict[str, Any]:
    """A backfill's result for scripts, with its plan when it was a dry run."""
    document: dict[str, Any] = {
        "command": "backfill",
        "run_id": report.run_id,
        "dry_run": report.dry_run,
        "summary": report.summary(),
        "guard": {
            "allowed": report.decision.allowed,
            "reason": report.decision.reason,
            "removals": report.removals,
            "synced": report.synced,
        },
        "students": report.students,
        "staff": report.staff,
        "queued": report.queued,
    }
    if report.plan is not None:
        document.update(report.plan.to_json())
    return document


def _fields(item: PlanItem) -> str:
    """A creation names the fields it sends (its values are all new: `--json` has them
    masked); any other write shows each field's old and new value, masked."""
    if item.action is Act.CREATE:
        return ", ".join(change.name for change in item.changes)
    return "\n".join(f"{c.name}: {c.before} → {c.after}" for c in item.changes)


def _managebac_id(item: PlanItem) -> str:
    if item.managebac_id is None or item.managebac_id <= 0:
        return "new" if item.action is Act.CREATE else ""
    return str(item.managebac_id)
