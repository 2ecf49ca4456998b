"""A generated school in iSAMS REST shapes, and the in-memory store the simulator serves.

Deterministic for a given (students, seed): tests and benchmarks can rely on the same data.
Records are plain JSON dicts shaped like the iSAMS REST API (docs/reference/isams-fields.md);
the ISO mapping lists (`*IsoMappings`) are kept out of the stored records and added only
when a caller asks with `expand=`, as iSAMS does.
"""

from __future__ import annotations

import copy
import threading
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from random import Random
from typing import Any, Literal

Record = dict[str, Any]
Collection = Literal["students", "contacts", "employees"]

ACADEMIC_YEAR_START = 2026
"""The school year the generated data describes (September 2026 to August 2027)."""

EMAIL_DOMAIN = "demo-school.example"
STUDENT_EXPANSIONS = frozenset({"nationalityIsoMappings", "languageIsoMappings"})
CONTACT_EXPANSIONS = frozenset({"countryIsoMappings"})
EMPLOYEE_EXPANSIONS = frozenset({"nationalityIsoMappings", "countryIsoMappings"})

# The school's Mappings Manager: iSAMS name -> (isoCode2Char, isoCode3Char, isoName).
# Deliberately incomplete, as in real schools: "German"/"Germany" have no mapping (a consumer
# must fall back to a lookup by name) and "Ruritanian"/"Makaton" match nothing anywhere.
NATIONALITY_ISO: dict[str, tuple[str, str, str]] = {
    "British": ("GB", "GBR", "United Kingdom"),
    "English": ("GB", "GBR", "United Kingdom"),
    "Scottish": ("GB", "GBR", "United Kingdom"),
    "Welsh": ("GB", "GBR", "United Kingdom"),
    "Irish": ("IE", "IRL", "Ireland"),
    "Spanish": ("ES", "ESP", "Spain"),
    "French": ("FR", "FRA", "France"),
    "American": ("US", "USA", "United States"),
    "Chinese": ("CN", "CHN", "China"),
    "Indian": ("IN", "IND", "India"),
    "Italian": ("IT", "ITA", "Italy"),
    "Polish": ("PL", "POL", "Poland"),
}
LANGUAGE_ISO: dict[str, tuple[str, str, str]] = {
    "English": ("en", "eng", "English"),
    "Spanish": ("es", "spa", "Spanish"),
    "Spanish (Latin American)": ("es", "spa", "Spanish"),
    "French": ("fr", "fra", "French"),
    "Mandarin": ("zh", "zho", "Chinese"),
    "Hindi": ("hi", "hin", "Hindi"),
    "Italian": ("it", "ita", "Italian"),
    "Polish": ("pl", "pol", "Polish"),
    "Welsh": ("cy", "cym", "Welsh"),
}
COUNTRY_ISO: dict[str, tuple[str, str, str]] = {
    "United Kingdom": ("GB", "GBR", "United Kingdom"),
    "Ireland": ("IE", "IRL", "Ireland"),
    "Spain": ("ES", "ESP", "Spain"),
    "France": ("FR", "FRA", "France"),
    "United States": ("US", "USA", "United States"),
    "Hong Kong": ("HK", "HKG", "Hong Kong"),
    "India": ("IN", "IND", "India"),
}

# Fields of a contact record that belong to the person, not to the student-contact link:
# editing one contact record changes them on every record of the same person (siblings).
CONTACT_PERSON_FIELDS = frozenset(
    {
        "title",
        "forename",
        "middleNames",
        "surname",
        "emailAddress",
        "mobileNumber",
        "telephoneNumber",
        "workTelephoneNumber",
        "address1",
        "address2",
        "address3",
        "town",
        "county",
        "postcode",
        "country",
        "profession",
        "deceased",
    }
)
_READ_ONLY_FIELDS = {
    "student": frozenset({"id", "schoolId"}),
    "contact": frozenset({"id", "schoolId", "personId", "personGuid"}),
    "employee": frozenset({"id"}),
}

_GIRLS = (
    "Olivia", "Amelia", "Isla", "Ava", "Freya", "Lily", "Sophia", "Grace", "Mia", "Evie",
    "Charlotte", "Poppy", "Zoë", "Siobhán", "Lucía", "Sofía", "Chloé", "Ananya", "Mei",
    "Emily", "Hannah", "Isabella", "Matilda", "Aisha", "Niamh",
)  # fmt: skip
_BOYS = (
    "Oliver", "George", "Noah", "Arthur", "Leo", "Harry", "Oscar", "Archie", "Jack", "Henry",
    "Theo", "Alexander", "William", "James", "Lucas", "Mateo", "José", "Seán", "Rory",
    "Arjun", "Wei", "Omar", "Finn", "Callum", "Thomas",
)  # fmt: skip
_WOMEN = (
    "Sarah", "Emma", "Rachel", "Laura", "Claire", "Helen", "Joanna", "Nicola", "María",
    "Carmen", "Priya", "Fatima", "Li", "Anna", "Kate", "Catherine", "Susan", "Margaret",
)  # fmt: skip
_MEN = (
    "David", "Paul", "Mark", "Richard", "Andrew", "Simon", "Daniel", "Carlos", "Javier",
    "Rajesh", "Ahmed", "Michael", "Stephen", "Peter", "John", "Robert", "Christopher",
)  # fmt: skip
_SURNAMES = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson",
    "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood",
    "Jackson", "Clarke", "O'Brien", "MacDonald", "García", "Fernández", "Müller", "Chen",
    "Patel", "Khan", "Nowak", "Rossi", "Dubois", "Kowalski", "Hughes", "Edwards", "Murphy",
)  # fmt: skip
_MIDDLE_NAMES = {
    "F": ("Rose", "Mae", "Grace", "Louise", "Marie", "Elizabeth"),
    "M": ("James", "John", "Alexander", "Lee", "Edward", "Thomas"),
}
_PREFERRED = {
    "Alexander": "Alex", "William": "Will", "James": "Jamie", "Thomas": "Tom",
    "Charlotte": "Lottie", "Isabella": "Bella", "Oliver": "Ollie", "Matilda": "Tilly",
    "Henry": "Harry", "Sofía": "Sofi",
}  # fmt: skip
_STREETS = (
    "High Street", "Church Lane", "Station Road", "The Avenue", "Mill Lane", "Victoria Road",
    "Kingsway", "Orchard Close", "London Road", "Park Crescent",
)  # fmt: skip
_HOUSE_NAMES = ("Rose Cottage", "The Old Rectory", "Flat 2", "Flat 11", "Willow House")
# (town, county, postcode area, country); an empty area means a non-UK postcode format.
_PLACES = (
    ("Guildford", "Surrey", "GU", "United Kingdom"),
    ("Reading", "Berkshire", "RG", "United Kingdom"),
    ("Oxford", "Oxfordshire", "OX", "United Kingdom"),
    ("Winchester", "Hampshire", "SO", "United Kingdom"),
    ("Cheltenham", "Gloucestershire", "GL", "United Kingdom"),
    ("Edinburgh", "Midlothian", "EH", "United Kingdom"),
    ("Cardiff", "South Glamorgan", "CF", "United Kingdom"),
)
_ABROAD = (
    ("Madrid", "Comunidad de Madrid", "28001", "Spain"),
    ("Paris", "Île-de-France", "75008", "France"),
    ("Hong Kong", None, None, "Hong Kong"),
    ("New York", "NY", "10024", "United States"),
    ("Munich", "Bavaria", "80331", "Germany"),
    ("Dublin", "County Dublin", "D02 X285", "Ireland"),
)
_NATIONALITY_WEIGHTS = (
    ("British", 50), ("English", 6), ("Scottish", 5), ("Welsh", 2), ("Irish", 4),
    ("Spanish", 7), ("French", 4), ("American", 4), ("Chinese", 4), ("Indian", 4),
    ("Italian", 2), ("Polish", 2), ("German", 3),
)  # fmt: skip
_SECOND_LANGUAGES = (
    "Spanish", "Spanish (Latin American)", "French", "Mandarin", "Hindi", "Italian",
    "Polish", "Welsh", "German",
)  # fmt: skip
_PROFESSIONS = (
    "Solicitor", "Doctor", "Engineer", "Teacher", "Accountant", "Architect", "Nurse",
    "Consultant", "Civil Servant", "Self-employed", "Pharmacist", None,
)  # fmt: skip
_STUDENT_STATUSES = (("Current", 93), ("Leaver", 5), ("Future", 2))
_GENDERS = (("M", 49), ("F", 49), ("X", 1), ("U", 1))


class UnknownRecordError(KeyError):
    """The simulated school has no record with that id."""


class UnknownFieldError(ValueError):
    """A patch names a field the record does not have, or one that cannot change."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """Format like iSAMS `lastUpdated`: naive UTC with milliseconds, no offset."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")


def _iso_date(day: date) -> str:
    """Format like iSAMS dates: midnight time part included."""
    return f"{day.isoformat()}T00:00:00"


def _iso_mappings(names: Iterable[str], table: Mapping[str, tuple[str, str, str]]) -> list[Record]:
    """Build the Mappings Manager list for the names that have a mapping (others are left out)."""
    mappings = []
    for name in names:
        if name in table:
            two, three, iso_name = table[name]
            mappings.append(
                {"iSAMSName": name, "isoCode2Char": two, "isoCode3Char": three, "isoName": iso_name}
            )
    return mappings


def expand_record(kind: str, record: Record, expand: Iterable[str]) -> Record:
    """Return the record with the `*IsoMappings` lists that `expand` asks for added.

    A new dict; nested values are shared with `record`, so pass a copy you own.
    """
    wanted = (
        set(expand)
        & {
            "student": STUDENT_EXPANSIONS,
            "contact": CONTACT_EXPANSIONS,
            "employee": EMPLOYEE_EXPANSIONS,
        }[kind]
    )
    result = dict(record)
    if "nationalityIsoMappings" in wanted:
        result["nationalityIsoMappings"] = _iso_mappings(
            record.get("nationalities") or [], NATIONALITY_ISO
        )
    if "languageIsoMappings" in wanted:
        result["languageIsoMappings"] = _iso_mappings(record.get("languages") or [], LANGUAGE_ISO)
    if "countryIsoMappings" in wanted:
        country = record.get("personalCountry" if kind == "employee" else "country")
        result["countryIsoMappings"] = _iso_mappings([country] if country else [], COUNTRY_ISO)
    return result


@dataclass
class SchoolData:
    """The school's records, keyed by iSAMS id, shared by the REST simulator and the emitter.

    Reads return deep copies; changes go through the `edit_*` methods, which bump
    `lastUpdated` so consumers see a newer record. Thread-safe, because tests may serve it
    from a uvicorn thread while the emitter runs elsewhere.
    """

    seed: int
    students: dict[str, Record]  # schoolId -> record, in id order
    contacts: dict[int, Record]  # contact id -> record; `schoolId` names the student
    employees: dict[int, Record]  # employee id -> record
    year_groups: list[Record]
    managebac_access: dict[int, bool]  # employee id -> third-party access to ManageBac+
    clock: Callable[[], datetime] = _utc_now
    _lock: threading.RLock = field(
        default_factory=threading.RLock, init=False, repr=False, compare=False
    )

    # Reads -------------------------------------------------------------------------------

    def page(self, collection: Collection, start: int, stop: int) -> tuple[int, list[Record]]:
        """Return the collection's size and copies of the records in [start, stop)."""
        with self._lock:
            records = list(getattr(self, collection).values())
            return len(records), copy.deepcopy(records[start:stop])

    def student(self, school_id: str) -> Record:
        """Return a copy of one student's record."""
        with self._lock:
            return copy.deepcopy(self._student(school_id))

    def all_students(self) -> list[Record]:
        with self._lock:
            return copy.deepcopy(list(self.students.values()))

    def contact(self, contact_id: int) -> Record:
        with self._lock:
            return copy.deepcopy(self._contact(contact_id))

    def all_contacts(self) -> list[Record]:
        with self._lock:
            return copy.deepcopy(list(self.contacts.values()))

    def contacts_of(self, school_id: str) -> list[Record]:
        """Return copies of a student's contact records (raises if the student is unknown)."""
        with self._lock:
            self._student(school_id)
            return copy.deepcopy([c for c in self.contacts.values() if c["schoolId"] == school_id])

    def employee(self, employee_id: int) -> Record:
        with self._lock:
            return copy.deepcopy(self._employee(employee_id))

    def all_employees(self) -> list[Record]:
        with self._lock:
            return copy.deepcopy(list(self.employees.values()))

    def sibling_groups(self) -> list[list[str]]:
        """Return the schoolIds of students who share at least one contact person."""
        with self._lock:
            by_person: dict[str, set[str]] = {}
            for contact in self.contacts.values():
                by_person.setdefault(contact["personGuid"], set()).add(contact["schoolId"])
        groups: list[set[str]] = []
        for children in by_person.values():
            if len(children) < 2:
                continue
            overlapping = [g for g in groups if g & children]
            merged = set(children).union(*overlapping)
            groups = [g for g in groups if not g & children] + [merged]
        return sorted(sorted(g) for g in groups)

    def summary(self) -> Record:
        """Return ids and counts, for tests and demos that need to know what exists."""
        with self._lock:
            return {
                "seed": self.seed,
                "students": len(self.students),
                "contacts": len(self.contacts),
                "contactPersons": len({c["personGuid"] for c in self.contacts.values()}),
                "employees": len(self.employees),
                "studentIds": list(self.students),
                "contactIds": list(self.contacts),
                "employeeIds": list(self.employees),
                "managebacAccess": {str(k): v for k, v in self.managebac_access.items()},
                "siblingGroups": self.sibling_groups(),
            }

    # Changes -----------------------------------------------------------------------------

    def edit_student(self, school_id: str, patch: Mapping[str, Any]) -> Record:
        """Apply a field patch to a student, bump `lastUpdated`, return the new record."""
        with self._lock:
            record = self._student(school_id)
            self._apply(record, patch, "student")
            if {"forename", "surname"} & patch.keys() and "fullName" not in patch:
                record["fullName"] = f"{record['forename']} {record['surname']}"
            return copy.deepcopy(record)

    def edit_contact(self, contact_id: int, patch: Mapping[str, Any]) -> Record:
        """Apply a patch to a contact; person fields change on every record of the person."""
        with self._lock:
            record = self._contact(contact_id)
            self._check_fields(record, patch, "contact")
            person = {k: v for k, v in patch.items() if k in CONTACT_PERSON_FIELDS}
            if person:
                for other in self.contacts.values():
                    if other is not record and other["personGuid"] == record["personGuid"]:
                        self._apply(other, person, "contact")
            self._apply(record, patch, "contact")
            return copy.deepcopy(record)

    def contact_ids_of_person(self, person_guid: str) -> list[int]:
        """Return the contact ids of one person (one per child)."""
        with self._lock:
            return [k for k, c in self.contacts.items() if c["personGuid"] == person_guid]

    def remove_contact(self, contact_id: int) -> Record:
        """Delete a contact record (the person stops being this student's contact)."""
        with self._lock:
            self._contact(contact_id)
            return self.contacts.pop(contact_id)

    def edit_employee(self, employee_id: int, patch: Mapping[str, Any]) -> Record:
        """Apply a patch to a staff record; a `managebacAccess` key sets the user's access."""
        with self._lock:
            record = self._employee(employee_id)
            fields = dict(patch)
            access = fields.pop("managebacAccess", None)
            if access is not None and not isinstance(access, bool):
                raise UnknownFieldError("managebacAccess must be true or false")
            self._check_fields(record, fields, "employee")
            if access is not None:
                self.managebac_access[employee_id] = access
            if fields or access is not None:
                self._apply(record, fields, "employee")
            return copy.deepcopy(record)

    def touch_time(self, previous: str | None) -> str:
        """Return a `lastUpdated` later than `previous`, so every change reads as newer."""
        now = self.clock()
        if previous:
            try:
                before = datetime.fromisoformat(previous).replace(tzinfo=UTC)
            except ValueError:
                before = None
            if before is not None and now <= before:
                now = before + timedelta(milliseconds=1)
        return format_timestamp(now)

    # Internals ---------------------------------------------------------------------------

    def _student(self, school_id: str) -> Record:
        try:
            return self.students[school_id]
        except KeyError:
            raise UnknownRecordError(f"no student with schoolId {school_id}") from None

    def _contact(self, contact_id: int) -> Record:
        try:
            return self.contacts[contact_id]
        except KeyError:
            raise UnknownRecordError(f"no contact with id {contact_id}") from None

    def _employee(self, employee_id: int) -> Record:
        try:
            return self.employees[employee_id]
        except KeyError:
            raise UnknownRecordError(f"no employee with id {employee_id}") from None

    @staticmethod
    def _check_fields(record: Record, patch: Mapping[str, Any], kind: str) -> None:
        unknown = sorted(k for k in patch if k not in record)
        if unknown:
            raise UnknownFieldError(f"{kind} has no field(s): {', '.join(unknown)}")
        fixed = sorted(k for k in patch if k in _READ_ONLY_FIELDS[kind])
        if fixed:
            raise UnknownFieldError(f"{kind} field(s) cannot change: {', '.join(fixed)}")

    def _apply(self, record: Record, patch: Mapping[str, Any], kind: str) -> None:
        """Write a patch; an explicit `lastUpdated` in it wins (for stale-event tests)."""
        self._check_fields(record, patch, kind)
        record.update(copy.deepcopy(dict(patch)))
        if "lastUpdated" not in patch:
            record["lastUpdated"] = self.touch_time(record.get("lastUpdated"))


# Generation ------------------------------------------------------------------------------


def _weighted(rng: Random, choices: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def ascii_fold(text: str) -> str:
    """Return lower-case ASCII letters and digits only (for e-mail local parts)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


class _Generator:
    """Builds one school; holds the counters and uniqueness sets while it does."""

    def __init__(self, seed: int) -> None:
        self.rng = Random(seed)
        self.emails: set[str] = set()
        self.email_counts: dict[str, int] = {}
        self.next_person_id = 50_001
        self.next_contact_id = 1
        self.next_address_id = 1
        self.base_updated = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)

    def guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def person_id(self) -> int:
        self.next_person_id += 1
        return self.next_person_id - 1

    def last_updated(self) -> str:
        offset = timedelta(seconds=self.rng.randrange(200 * 24 * 3600))
        moment = self.base_updated - offset + timedelta(milliseconds=self.rng.randrange(1000))
        return format_timestamp(moment)

    def email(self, forename: str, surname: str, domain: str, style: int = 0) -> str:
        first, last = ascii_fold(forename) or "x", ascii_fold(surname) or "x"
        local = {0: f"{first[0]}{last}", 1: f"{first}.{last}"}.get(style, f"{last}{first[0]}")
        key = f"{local}@{domain}"
        n = self.email_counts.get(key, 0)
        candidate = key if n == 0 else f"{local}{n + 1}@{domain}"
        while candidate in self.emails:  # "jsmith2" may also be a real "j.smith2" style name
            n += 1
            candidate = f"{local}{n + 1}@{domain}"
        self.email_counts[key] = n + 1
        self.emails.add(candidate)
        return candidate

    def mobile(self) -> str:
        number = f"7700 900{self.rng.randrange(1000):03d}"
        return f"+44 {number}" if self.rng.random() < 0.3 else f"0{number}"

    def landline(self) -> str:
        return f"01632 960{self.rng.randrange(1000):03d}"

    def address(self, abroad: bool) -> Record:
        rng = self.rng
        if abroad:
            town, county, postcode, country = rng.choice(_ABROAD)
        else:
            town, county, area, country = rng.choice(_PLACES)
            postcode = (
                f"{area}{rng.randrange(1, 30)} {rng.randrange(10)}"
                f"{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
            )
        self.next_address_id += 1
        return {
            "id": self.next_address_id - 1,
            "address1": f"{rng.randrange(1, 200)} {rng.choice(_STREETS)}",
            "address2": rng.choice(_HOUSE_NAMES) if rng.random() < 0.2 else None,
            "address3": None,
            "town": town,
            "county": county,
            "postcode": postcode,
            "country": country,
            "private": False,
        }

    def nationalities(self) -> list[str]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.02:
            return []
        first = _weighted(rng, _NATIONALITY_WEIGHTS)
        if roll < 0.03:
            return [first, "Ruritanian"]
        if roll < 0.17:
            second = _weighted(rng, _NATIONALITY_WEIGHTS)
            return [first] if second == first else [first, second]
        return [first]

    def languages(self) -> list[str]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.005:
            return ["English", "Makaton"]
        if roll < 0.25:
            return ["English", rng.choice(_SECOND_LANGUAGES)]
        if roll < 0.30:
            return [rng.choice(_SECOND_LANGUAGES)]
        return ["English"]


def _year_group(rng: Random) -> int:
    if rng.random() < 0.03:
        return rng.choice((5, 6))  # prep pupils: outside a typical 7..13 mapping
    return rng.randint(7, 13)


def _student(gen: _Generator, index: int, school_id: str, family: Record) -> Record:
    rng = gen.rng
    gender = _weighted(rng, _GENDERS)
    girl = gender == "F" or (gender not in ("M", "F") and rng.random() < 0.5)
    forename = rng.choice(_GIRLS if girl else _BOYS)
    roll = rng.random()
    middlenames = (
        rng.choice(_MIDDLE_NAMES["F" if girl else "M"])
        if roll < 0.55
        else ("" if roll < 0.6 else None)
    )
    preferred = _PREFERRED.get(forename) if rng.random() < 0.5 else None
    if preferred is None and rng.random() < 0.05:
        preferred = rng.choice(_GIRLS if girl else _BOYS)
    year = _year_group(rng)
    born = date(ACADEMIC_YEAR_START - year - 5, 9, 1) + timedelta(days=rng.randrange(365))
    entry_year = min(year, rng.choice((7, 7, 7, 7, 9, 12))) if year >= 7 else year
    enrolled = date(ACADEMIC_YEAR_START - (year - entry_year), 9, rng.choice((2, 3, 4)))
    status = _weighted(rng, _STUDENT_STATUSES)
    leaving = None
    if status == "Leaver":
        leaving = _iso_date(date(ACADEMIC_YEAR_START, 7, 1) - timedelta(days=rng.randrange(400)))
    surname = family["surname"]
    return {
        "id": index,
        "schoolId": school_id,
        "schoolCode": f"S{index + 100:06d}",
        "personId": gen.person_id(),
        "personGuid": gen.guid(),
        "title": None,
        "forename": forename,
        "middlenames": middlenames,
        "surname": surname,
        "preferredName": preferred,
        "fullName": f"{forename} {surname}",
        "dob": _iso_date(born),
        "gender": gender,
        "yearGroup": year,
        "formGroup": f"{year}{rng.choice('ABCD')}",
        "enrolmentDate": _iso_date(enrolled),
        "schoolEmailAddress": (
            None if rng.random() < 0.10 else gen.email(forename, surname, EMAIL_DOMAIN)
        ),
        "personalEmailAddress": (
            gen.email(forename, surname, "mail.example", style=1) if rng.random() < 0.1 else None
        ),
        "mobileNumber": gen.mobile() if rng.random() < 0.6 else None,
        "nationalities": gen.nationalities(),
        "languages": gen.languages(),
        "residentCountry": family["home"]["country"],
        "homeAddresses": [dict(address) for address in family["addresses"]],
        "systemStatus": status,
        "leavingDate": leaving,
        "lastUpdated": gen.last_updated(),
    }


# (contactType, relationship, sex, parentalResponsibility)
_PersonSpec = tuple[str, str, str, bool]
_FAMILY_SHAPES: tuple[tuple[tuple[_PersonSpec, ...], int], ...] = (
    ((("Parents", "Mother", "F", True), ("Parents", "Father", "M", True)), 68),
    ((("Parents", "Mother", "F", True),), 10),
    ((("Parents", "Father", "M", True),), 5),
    ((("Parents", "Mother", "F", True), ("Parents", "Step-Father", "M", False)), 5),
    ((("Parents", "Father", "M", True), ("Parents", "Step-Mother", "F", False)), 3),
    ((("Guardian", "Legal Guardian", "F", True),), 3),
    ((("Guardian", "Guardian", "M", True), ("Agent", "Education Agent", "F", False)), 2),
    ((("Parents", "Mother", "F", True), ("Guardian", "Carer", "M", True)), 1),
)
_EXTRA_CONTACTS: tuple[tuple[_PersonSpec, int], ...] = (
    (("Emergency", "Grandmother", "F", False), 10),
    (("Emergency", "Grandfather", "M", False), 5),
    (("Emergency", "Aunt", "F", False), 4),
    (("Emergency", "Uncle", "M", False), 3),
    (("Other", "Family Friend", "F", False), 2),
)


def _person(gen: _Generator, spec: _PersonSpec, family: Record) -> Record:
    rng = gen.rng
    contact_type, relationship, sex, _ = spec
    forename = rng.choice(_WOMEN if sex == "F" else _MEN)
    if relationship in ("Mother", "Father") or rng.random() < 0.4:
        surname = family["surname"]
    else:
        surname = rng.choice(_SURNAMES)
    if sex == "F":
        title = rng.choices(("Mrs", "Ms", "Miss", "Dr", "Prof"), weights=(50, 25, 10, 12, 3))[0]
    else:
        title = rng.choices(("Mr", "Dr", "Rev"), weights=(85, 12, 3))[0]
    lives_at_home = relationship in ("Mother", "Father", "Step-Mother", "Step-Father")
    address = family["home"] if lives_at_home else gen.address(abroad=rng.random() < 0.1)
    return {
        "personId": gen.person_id(),
        "personGuid": gen.guid(),
        "title": title,
        "forename": forename,
        "middleNames": rng.choice(_MIDDLE_NAMES[sex]) if rng.random() < 0.3 else None,
        "surname": surname,
        "emailAddress": (
            None if rng.random() < 0.04 else gen.email(forename, surname, "mail.example", 1)
        ),
        "mobileNumber": gen.mobile() if rng.random() < 0.9 else None,
        "telephoneNumber": gen.landline() if rng.random() < 0.4 else None,
        "workTelephoneNumber": gen.landline() if rng.random() < 0.2 else None,
        "address1": address["address1"],
        "address2": address["address2"],
        "address3": address["address3"],
        "town": address["town"],
        "county": address["county"],
        "postcode": address["postcode"],
        "country": address["country"],
        "profession": rng.choice(_PROFESSIONS) if contact_type != "Emergency" else None,
        "deceased": False,
        "_spec": spec,
        "_home": lives_at_home,
    }


def _family(gen: _Generator) -> Record:
    rng = gen.rng
    shape = rng.choices([s for s, _ in _FAMILY_SHAPES], [w for _, w in _FAMILY_SHAPES])[0]
    home = gen.address(abroad=rng.random() < 0.08)
    family: Record = {"surname": rng.choice(_SURNAMES), "home": home, "addresses": [home]}
    if rng.random() < 0.05:
        family["surname"] = f"{family['surname']}-{rng.choice(_SURNAMES)}"
    specs = list(shape)
    if rng.random() < 0.25:
        extras = _EXTRA_CONTACTS
        specs.append(rng.choices([s for s, _ in extras], [w for _, w in extras])[0])
    family["persons"] = [_person(gen, spec, family) for spec in specs]
    if rng.random() < 0.05:  # separated parents: a second home on the student record
        second = gen.address(abroad=False)
        family["addresses"] = [home, second]
    return family


def _contact_record(gen: _Generator, person: Record, school_id: str) -> Record:
    contact_type, relationship, _, responsibility = person["_spec"]
    record = {k: v for k, v in person.items() if not k.startswith("_")}
    gen.next_contact_id += 1
    return {
        "id": gen.next_contact_id - 1,
        "schoolId": school_id,
        "personId": record.pop("personId"),
        "personGuid": record.pop("personGuid"),
        "contactType": contact_type,
        "relationship": relationship,
        "parentalResponsibility": responsibility,
        **record,
        "studentHome": person["_home"],
        "contactOnly": contact_type in ("Emergency", "Other", "Agent"),
        "lastUpdated": gen.last_updated(),
    }


def _employee(gen: _Generator, employee_id: int, initials: set[str]) -> Record:
    rng = gen.rng
    gender = rng.choices(("M", "F", "X"), weights=(45, 54, 1))[0]
    forename = rng.choice(_WOMEN if gender == "F" else _MEN)
    surname = rng.choice(_SURNAMES)
    middle = (
        rng.choice(_MIDDLE_NAMES["F" if gender == "F" else "M"]) if rng.random() < 0.4 else None
    )
    code = ascii_fold(forename)[:1].upper() + ascii_fold(surname)[:2].upper()
    candidate, n = code, 1
    while candidate in initials:
        n += 1
        candidate = f"{code}{n}"
    initials.add(candidate)
    title = "Dr" if rng.random() < 0.1 else ("Mr" if gender == "M" else rng.choice(("Mrs", "Ms")))
    born = date(1960, 1, 1) + timedelta(days=rng.randrange(365 * 40))
    leaver = rng.random() < 0.06
    home = gen.address(abroad=rng.random() < 0.03)
    nationalities = gen.nationalities()
    return {
        "id": employee_id,
        "personGuid": gen.guid(),
        "title": title,
        "forename": forename,
        "middleNames": middle,
        "surname": surname,
        "preferredName": _PREFERRED.get(forename) if rng.random() < 0.2 else None,
        "schoolInitials": candidate,
        "gender": gender,
        "dateOfBirth": _iso_date(born),
        "nationalities": nationalities,
        "schoolEmailAddress": (
            None if rng.random() < 0.03 else gen.email(forename, surname, EMAIL_DOMAIN, 1)
        ),
        "personalEmailAddress": (
            gen.email(forename, surname, "mail.example", 2) if rng.random() < 0.5 else None
        ),
        "schoolMobileNumber": gen.mobile() if rng.random() < 0.3 else None,
        "personalMobileNumber": gen.mobile() if rng.random() < 0.8 else None,
        "schoolTelephoneNumber": gen.landline() if rng.random() < 0.5 else None,
        "personalTelephoneNumber": gen.landline() if rng.random() < 0.3 else None,
        "personalAddress1": home["address1"],
        "personalAddress2": home["address2"],
        "personalAddress3": home["address3"],
        "personalTown": home["town"],
        "personalCounty": home["county"],
        "personalPostcode": home["postcode"],
        "personalCountry": home["country"],
        "isTeachingStaff": rng.random() < 0.75,
        "systemStatus": "Leaver" if leaver else "Current",
        "leavingDate": (
            _iso_date(date(ACADEMIC_YEAR_START, 8, 31) - timedelta(days=rng.randrange(300)))
            if leaver
            else None
        ),
        "lastUpdated": gen.last_updated(),
    }


def _year_groups(
    gen: _Generator, employees: dict[int, Record], years: Iterable[int]
) -> list[Record]:
    names = {12: "Lower Sixth", 13: "Upper Sixth"}
    codes = {12: "L6", 13: "U6"}
    teachers = [e["id"] for e in employees.values() if e["isTeachingStaff"]]
    return [
        {
            "ncYear": year,
            "name": names.get(year, f"Year {year}"),
            "code": codes.get(year, f"Y{year}"),
            "tutorId": gen.rng.choice(teachers) if teachers else None,
            "lastUpdated": gen.last_updated(),
        }
        for year in sorted(years)
    ]


def generate_school(students: int, seed: int) -> SchoolData:
    """Build a school of `students` pupils with their contacts and staff, from `seed` alone.

    About 30% of families have two or three children at the school; siblings' contact
    records name the same persons (same `personId` and `personGuid`), as in iSAMS.
    """
    if students < 0:
        raise ValueError("students must be zero or more")
    gen = _Generator(seed)
    rng = gen.rng
    student_records: dict[str, Record] = {}
    contacts: dict[int, Record] = {}
    number = 145629077400
    index = 1
    while index <= students:
        family = _family(gen)
        children = rng.choices((1, 2, 3), weights=(75, 20, 5))[0]
        for _ in range(min(children, students - index + 1)):
            number += rng.randint(1, 13)  # gaps, as after deletions and applicants
            school_id = str(number)
            student_records[school_id] = _student(gen, index, school_id, family)
            for person in family["persons"]:
                contact = _contact_record(gen, person, school_id)
                contacts[contact["id"]] = contact
            index += 1
    initials: set[str] = set()
    employees = {i: _employee(gen, i, initials) for i in range(1, max(1, students // 10) + 1)}
    access = {
        i: (rng.random() < 0.9 if e["isTeachingStaff"] else rng.random() < 0.15)
        for i, e in employees.items()
    }
    years = set(range(7, 14)) | {r["yearGroup"] for r in student_records.values()}
    return SchoolData(
        seed=seed,
        students=student_records,
        contacts=contacts,
        employees=employees,
        year_groups=_year_groups(gen, employees, years),
        managebac_access=access,
    )
