"""A generated school in iSAMS REST shapes, served by the simulator and edited by the emitter.

Deterministic for a given (students, seed): tests and benchmarks can rely on the same data.
The facts this simulator added later (joint and deceased contacts, `parentalResponsibility`
words, leaving reasons, employment details) come from a second random stream, so a seed's
older values (names, ids, e-mails, statuses) stay as they were.

The store (`SchoolData`) lives in `sim.isams.store` and the REST shapes in
`sim.isams.views`; both are re-exported here, where callers have always found them.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from random import Random

from sim.isams.store import (
    CONTACT_PERSON_FIELDS,
    JOINT_FIELDS,
    LEAVER_STATUS,
    SECONDARY_PERSON_FIELDS,
    Collection,
    Record,
    Roll,
    SchoolData,
    UnknownFieldError,
    UnknownRecordError,
    format_timestamp,
    iso_date,
    name_list,
    roll_of,
)
from sim.isams.views import (
    CONTACT_EXPANSIONS,
    COUNTRY_ISO,
    EMPLOYEE_EXPANSIONS,
    LANGUAGE_ISO,
    NATIONALITY_ISO,
    STUDENT_CONTACT_EXPANSIONS,
    STUDENT_EXPANSIONS,
    expand_record,
)

__all__ = [
    "ACADEMIC_YEAR_START",
    "CONTACT_EXPANSIONS",
    "CONTACT_PERSON_FIELDS",
    "COUNTRY_ISO",
    "EMAIL_DOMAIN",
    "EMPLOYEE_EXPANSIONS",
    "LANGUAGE_ISO",
    "NATIONALITY_ISO",
    "STUDENT_CONTACT_EXPANSIONS",
    "STUDENT_EXPANSIONS",
    "Collection",
    "Record",
    "Roll",
    "SchoolData",
    "UnknownFieldError",
    "UnknownRecordError",
    "ascii_fold",
    "expand_record",
    "format_timestamp",
    "generate_school",
    "roll_of",
]

ACADEMIC_YEAR_START = 2026
"""The school year the generated data describes (September 2026 to August 2027)."""

EMAIL_DOMAIN = "demo-school.example"

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
_LEAVING_REASONS = (
    "End of Sixth Form", "Moved to another school", "Relocated abroad", "Home education",
    "Financial",
)  # fmt: skip
# Staff `divisions` as a list of division names is ASSUMED; the names are a school's sections.
_DIVISIONS = ("Prep School", "Senior School", "Sixth Form")
JOINT_FAMILY_RATE = 0.05
"""Share of two-parent families held as one joint contact record (about 3% of families)."""


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
        # A second stream for facts added later, so `rng` draws what it always drew.
        self.extra = Random(f"isams-sim-extra:{seed}")
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
    leaving = reason = None
    if status == LEAVER_STATUS:
        leaving = iso_date(date(ACADEMIC_YEAR_START, 7, 1) - timedelta(days=rng.randrange(400)))
        reason = gen.extra.choice(_LEAVING_REASONS)
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
        "dob": iso_date(born),
        "gender": gender,
        "yearGroup": year,
        "formGroup": f"{year}{rng.choice('ABCD')}",
        "enrolmentDate": iso_date(enrolled),
        "schoolEmailAddress": (
            None if rng.random() < 0.10 else gen.email(forename, surname, EMAIL_DOMAIN)
        ),
        "personalEmailAddress": (
            gen.email(forename, surname, "mail.example", style=1) if rng.random() < 0.1 else None
        ),
        "mobileNumber": gen.mobile() if rng.random() < 0.6 else None,
        "nationalities": name_list(gen.nationalities()),
        "languages": name_list(gen.languages()),
        "residentCountry": family["home"]["country"],
        "homeAddresses": [dict(address) for address in family["addresses"]],
        "systemStatus": status,
        "leavingDate": leaving,
        "leavingReason": reason,
        "lastUpdated": gen.last_updated(),
    }


# (contactType, relationship, sex, has parental responsibility)
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
        "deceased": _deceased(gen, relationship),
        **dict.fromkeys((*JOINT_FIELDS, *SECONDARY_PERSON_FIELDS)),
        "_spec": spec,
        "_home": lives_at_home,
    }


def _deceased(gen: _Generator, relationship: str) -> bool:
    """Mark a few contacts deceased (grandparents more often), as schools keep them on file."""
    return gen.extra.random() < (0.08 if relationship.startswith("Grand") else 0.01)


def _secondary(person: Record, relationship: str) -> Record:
    """Return a person as the second person of a joint contact record."""
    return {
        "secondaryPersonId": person["personId"],
        "secondaryPersonGuid": person["personGuid"],
        "relationshipOfJointContact": relationship,
        "secondaryTitle": person["title"],
        "secondaryForename": person["forename"],
        "secondaryMiddleNames": person["middleNames"],
        "secondarySurname": person["surname"],
        "secondaryEmailAddress": person["emailAddress"],
        "secondaryMobileNumber": person["mobileNumber"],
    }


def _joined(records: list[Record]) -> list[Record]:
    """Hold one child's father and mother as one joint contact record.

    iSAMS puts the father first and the mother second on a joint "Parents" contact; the
    mother then has no record of her own (its id is left unused, a gap as after a
    deletion), only the `secondary*` fields of the father's record.
    """
    by_relationship = {r["relationship"]: r for r in records}
    father, mother = by_relationship["Father"], by_relationship["Mother"]
    joint = {**father, **_secondary(mother, "Mother")}
    return [joint if r is father else r for r in records if r is not mother]


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
    parents = {spec[1] for spec in specs} >= {"Father", "Mother"}
    family["joint"] = parents and gen.extra.random() < JOINT_FAMILY_RATE
    if rng.random() < 0.05:  # separated parents: a second home on the student record
        second = gen.address(abroad=False)
        family["addresses"] = [home, second]
    return family


def _responsibility(gen: _Generator, has_it: bool) -> str:
    """Say it as iSAMS does: `Yes`, `No`, or `Default` (the contact type's default)."""
    if gen.extra.random() < 0.25:
        return "Default"
    return "Yes" if has_it else "No"


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
        "parentalResponsibility": _responsibility(gen, responsibility),
        **record,
        "studentHome": person["_home"],
        "contactOnly": contact_type in ("Emergency", "Other", "Agent"),
        "lastUpdated": gen.last_updated(),
    }


def _employment(gen: _Generator, teaching: bool) -> Record:
    """Return the employment facts iSAMS shows on staff (`divisions` names are assumed)."""
    extra = gen.extra
    divisions = extra.sample(_DIVISIONS, extra.choice((1, 1, 2))) if teaching else None
    if not teaching and extra.random() < 0.5:
        divisions = [extra.choice(_DIVISIONS)]
    return {
        "enrolmentDate": iso_date(date(1995, 9, 1) + timedelta(days=extra.randrange(365 * 25))),
        "isPartTime": extra.random() < 0.15,
        "isPersonalTutor": teaching and extra.random() < 0.5,
        "divisions": divisions,  # iSAMS sends null, not [], for no division (isams-php)
    }


def _employee(gen: _Generator, employee_id: int, initials: set[str]) -> Record:
    """Build a staff record: no `lastUpdated`, as iSAMS shows none on employees."""
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
    nationalities = name_list(gen.nationalities())
    record = {
        "id": employee_id,
        "personGuid": gen.guid(),
        "title": title,
        "forename": forename,
        "middleNames": middle,
        "surname": surname,
        "preferredName": _PREFERRED.get(forename) if rng.random() < 0.2 else None,
        "schoolInitials": candidate,
        "gender": gender,
        "dateOfBirth": iso_date(born),
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
            iso_date(date(ACADEMIC_YEAR_START, 8, 31) - timedelta(days=rng.randrange(300)))
            if leaver
            else None
        ),
    }
    gen.last_updated()  # drawn and dropped, so the rest of a seed's school stays as it was
    return {**record, **_employment(gen, bool(record["isTeachingStaff"]))}


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
            records = [_contact_record(gen, person, school_id) for person in family["persons"]]
            for contact in _joined(records) if family["joint"] else records:
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
