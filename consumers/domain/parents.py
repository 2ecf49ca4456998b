"""Parents: map an iSAMS contact to a ManageBac+ parent, and plan the writes.

docs/design.md §3 "Parents" and "Precise semantics". iSAMS keeps one contact record per pupil and
contact; ManageBac+ has one parent per person (`personGuid`, else `personId`). The consumer
groups a person's contact records, picks the representative one (`representative_contact`),
tells whether any of the person's children is active in ManageBac+, and calls `plan_parent`;
each contact's link to its pupil is planned apart (`relationships.plan_link`). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

from consumers.domain.fields import (
    address,
    archive_plan,
    country,
    is_email,
    missing_reason,
    present,
    skip_plan,
    write_plan,
)
from consumers.domain.isams import IsamsContact, as_utc
from consumers.domain.parse import parse_record
from consumers.domain.plan import Fields, FieldValue, Plan, PushedState, Skip

NO_PERSON = "no personGuid or personId in iSAMS"
DECEASED = "the contact is marked deceased in iSAMS"
NO_CONTACT = "no contact of this person syncs any more (removed in iSAMS, or not mapped)"
NO_ACTIVE_CHILD = "none of this parent's children is active in ManageBac+"
SALUTATION_NOT_SENT = (
    "title: the iSAMS title is not Mr, Mrs, Ms, Miss or Dr, so no salutation was sent"
)
_SALUTATIONS = {"mr": "Mr.", "mrs": "Mrs.", "ms": "Ms.", "miss": "Ms.", "dr": "Dr."}
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ParentRules:
    """One school's settings that parent mapping needs (built by adapters from `School`).

    `contact_types` are the iSAMS `contactType` values that sync as parents, compared
    ignoring case (stored folded); `relationships` overrides the built-in relationship table.
    """

    contact_types: frozenset[str]
    relationships: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        folded = frozenset(_fold(name) for name in self.contact_types)
        object.__setattr__(self, "contact_types", folded)
        object.__setattr__(self, "relationships", MappingProxyType(dict(self.relationships)))

    @classmethod
    def from_settings(
        cls, contact_types: Sequence[str], relationships: Mapping[str, str]
    ) -> ParentRules:
        """Build the rules from a school's `mappings.contact_types` and `.relationships`."""
        return cls(frozenset(contact_types), relationships)

    def syncs_type(self, contact_type: str | None) -> bool:
        """Tell whether a `contactType` is one of the school's mapped ones (any case)."""
        return contact_type is not None and _fold(contact_type) in self.contact_types


@dataclass(frozen=True, slots=True)
class MappedParent:
    """A contact as ManageBac+ parent fields: the full desired state, empty values left out."""

    fields: Fields
    warnings: tuple[str, ...]


def parse_contact(raw: object) -> IsamsContact | Skip:
    """Read an iSAMS REST contact record; a record that cannot be read is a `Skip`."""
    return parse_record(IsamsContact, raw)


def person_key(contact: IsamsContact) -> str | None:
    """Return the person behind a contact record: `personGuid` (lower-case), else `personId`.

    GUIDs are compared ignoring case, so one person is never two ManageBac+ parents because
    two iSAMS endpoints spell the GUID differently.
    """
    if contact.person_guid is not None:
        return contact.person_guid.lower()
    return contact.person_id


def email_key(email: str) -> str:
    """Return an e-mail address as compared for matching and uniqueness (case ignored)."""
    return email.strip().casefold()


def contact_syncs(contact: IsamsContact, rules: ParentRules) -> str | None:
    """Return None when the contact syncs as a parent, else why not in plain words.

    It syncs when its `contactType` is mapped, it names a person, and it is not marked
    deceased (so ManageBac+ never writes to a family about someone who has died).
    """
    reasons: list[str] = []
    if contact.contact_type is None:
        reasons.append("contactType is empty in iSAMS, so it is not in mappings.contact_types")
    elif not rules.syncs_type(contact.contact_type):
        shown = contact.contact_type[:40].replace('"', "'")
        reasons.append(f'contactType "{shown}" is not in mappings.contact_types')
    if person_key(contact) is None:
        reasons.append(NO_PERSON)
    if contact.deceased:
        reasons.append(DECEASED)
    return "; ".join(reasons) or None


def representative_contact(
    contacts: Iterable[IsamsContact], rules: ParentRules
) -> IsamsContact | None:
    """Pick the contact record whose details the person's ManageBac+ parent takes.

    Among the records that sync: the most recently updated in iSAMS, then the one with the
    lowest `id` (then by content), so the choice is the same whatever order the records
    come in. None when none syncs.
    """
    syncing = [contact for contact in contacts if contact_syncs(contact, rules) is None]
    if not syncing:
        return None
    latest = max(_updated(contact) for contact in syncing)
    newest = [contact for contact in syncing if _updated(contact) == latest]
    return min(newest, key=lambda contact: (_id_order(contact.id), contact.model_dump_json()))


def map_parent(contact: IsamsContact, rules: ParentRules) -> MappedParent | Skip:
    """Map a contact as for creating its parent; `Skip` names why it cannot sync.

    Required: a contact that syncs (`contact_syncs`), a `surname` and a valid `emailAddress`.
    """
    reason = contact_syncs(contact, rules)
    if reason is not None:
        return Skip(reason)
    missing = _missing(contact)
    return Skip(missing) if missing else _map(contact)


def plan_parent(
    contact: IsamsContact | None,
    rules: ParentRules,
    previous: PushedState | None,
    has_active_child: bool,
) -> Plan:
    """Decide what to write to ManageBac+ for one person's parent.

    - `contact` is the person's representative synced contact record, None when the person
      has no synced contact left (removed, deleted, or its `contactType` no longer mapped).
      A contact that does not sync counts as None.
    - No synced contact, or no active child: archive when ManageBac+ has the parent
      unarchived; otherwise skip with the reason.
    - New: create (empty values left out). Archived before and syncing again: unarchive,
      then write the whole current state.
    - Synced before: write only changed fields; a field pushed before and now empty is
      cleared with `""`.
    - Missing `surname` or a valid `emailAddress`: skip, even when synced before (clearing
      them would break the ManageBac+ parent); the ledger keeps the link.
    """
    if contact is None:
        return archive_plan(previous, NO_CONTACT)
    reason = contact_syncs(contact, rules)
    if reason is not None:
        return archive_plan(previous, f"{NO_CONTACT}: {reason}")
    if not has_active_child:
        return archive_plan(previous, NO_ACTIVE_CHILD)
    missing = _missing(contact)
    mapped = _map(contact)
    if missing:
        return skip_plan(previous, missing, mapped.warnings)
    return write_plan(mapped.fields, previous, mapped.warnings)


def salutation(title: str | None, warnings: list[str]) -> str | None:
    """Return ManageBac+'s salutation for an iSAMS title (`Mr`/`Mr.` → `Mr.`, `Miss` → `Ms.`).

    Any case, with or without the dot; other titles are not sent, with a warning.
    """
    if title is None:
        return None
    found = _SALUTATIONS.get(title.strip().removesuffix(".").strip().casefold())
    if found is None:
        warnings.append(SALUTATION_NOT_SENT)
    return found


def _missing(contact: IsamsContact) -> str | None:
    missing = [] if contact.surname else ["surname"]
    invalid: list[str] = []
    if contact.email_address is None:
        missing.append("emailAddress")
    elif not is_email(contact.email_address):
        invalid.append("emailAddress")
    return missing_reason(missing, invalid)


def _map(contact: IsamsContact) -> MappedParent:
    """Map every field §3 names for parents; empty values are left out."""
    warnings: list[str] = []
    fields: dict[str, FieldValue | None] = {
        "salutation": salutation(contact.title, warnings),
        "first_name": contact.forename,
        "last_name": contact.surname,
        "email": contact.email_address,
        "title": contact.profession,
        "mobile_phone_number": contact.mobile_number,
        "phone_number": contact.telephone_number,
        **address(
            contact.address1, contact.address2, contact.town, contact.county, contact.postcode
        ),
        "country": country(contact.country, contact.country_iso_mappings, warnings),
    }
    if not is_email(contact.email_address):
        fields["email"] = None
    return MappedParent(fields=present(fields), warnings=tuple(warnings))


def _updated(contact: IsamsContact) -> datetime:
    return as_utc(contact.last_updated) if contact.last_updated is not None else _NEVER


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def _id_order(value: str | None) -> tuple[int, int, str]:
    """Order ids numerically when they are numbers, else as text; a missing id last."""
    if value is None:
        return (2, 0, "")
    if value.isascii() and value.isdigit():  # "¹".isdigit() is true, but int() refuses it
        return (0, int(value), value)
    return (1, 0, value)
