"""How iSAMS shows a stored record: ISO mapping expansions, alumni and applicant shapes.

The store keeps one record per pupil; iSAMS shows a pupil differently on each list. The
ISO mapping lists (`*IsoMappings`) are kept out of stored records and added only when a
caller asks with `expand=`, as iSAMS does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from sim.isams.store import Record

# The list body's collection key of each pupil list. Alumni and applicants come from ONE
# public source (nacht29/isams-pipeline, src/python_scripts/python_utils/formats.py: `alumni`
# from /api/alumni, `students` from /api/admissions/applicants/students); iSAMS has not
# published them. (cranleighschool/isams-php reads `applicants` from the older
# /api/admissions/applicants.)
STUDENTS_COLLECTION = "students"
ALUMNI_COLLECTION = "alumni"
APPLICANTS_COLLECTION = "students"

STUDENT_EXPANSIONS = frozenset({"nationalityIsoMappings", "languageIsoMappings"})
CONTACT_EXPANSIONS = frozenset({"countryIsoMappings"})  # the paged /api/students/contacts
STUDENT_CONTACT_EXPANSIONS = frozenset({"customFields"})  # /api/students/{schoolId}/contacts
EMPLOYEE_EXPANSIONS = frozenset({"nationalityIsoMappings", "countryIsoMappings"})
_EXPANSIONS = {
    "student": STUDENT_EXPANSIONS,
    "contact": CONTACT_EXPANSIONS,
    "employee": EMPLOYEE_EXPANSIONS,
}

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

SCHOOL_YEAR_START_MONTH = 9
"""iSAMS numbers a school year by the calendar year it starts in (Batch API example: a pupil
enrolled 2015-11-02 has `EnrolmentSchoolYear` 2015); `leavingYear` is ASSUMED to do the same."""

ADMISSION_STATUS = "Accepted"  # assumed: schools name their own admission statuses

# A contact's custom fields (`expand=customFields`). The item shape is ASSUMED: public client
# code shows the key `customFields` (a list) and reads a `value` from each item, no more.
_CONTACT_CUSTOM_FIELD_ID = 1
_CONTACT_CUSTOM_FIELD_NAME = "Preferred Contact Method"


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

    A new dict; nested values are shared with `record`, so pass a copy you own. Expansions
    a kind does not have are ignored.
    """
    wanted = set(expand) & _EXPANSIONS[kind]
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


def student_contact_record(record: Record, expand: Iterable[str]) -> Record:
    """Return a contact as `/api/students/{schoolId}/contacts` shows it: `customFields` only."""
    result = dict(record)
    if "customFields" in set(expand) & STUDENT_CONTACT_EXPANSIONS:
        method = "Email" if record.get("emailAddress") else "Telephone"
        field = {"id": _CONTACT_CUSTOM_FIELD_ID, "name": _CONTACT_CUSTOM_FIELD_NAME}
        result["customFields"] = [{**field, "value": method}]
    return result


def school_year(value: str | None) -> int | None:
    """Return the school year an iSAMS date falls in (2026-07-01 is in school year 2025)."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:
        return None
    return day.year if day.month >= SCHOOL_YEAR_START_MONTH else day.year - 1


def alumni_record(record: Record) -> Record:
    """Return a leaver as `/api/alumni` shows them: the pupil plus when and why they left.

    `leavingDate` and `leavingReason` are stored; `leavingYear` (the school year of the
    leaving date) and `leavingYearGroup` (the year group they left from) are derived.
    """
    return {
        **record,
        "leavingYear": school_year(record.get("leavingDate")),
        "leavingYearGroup": record.get("yearGroup"),
    }


def applicant_record(record: Record) -> Record:
    """Return a future pupil as `/api/admissions/applicants/students` shows them.

    Field names follow the one public applicant schema (nacht29/isams-pipeline): applicants
    have `dateOfBirth` and `middleNames` where current pupils have `dob` and `middlenames`,
    and an enrolment school year and year group instead of a form.
    """
    return {
        "schoolId": record["schoolId"],
        "schoolCode": record.get("schoolCode"),
        "personId": record.get("personId"),
        "personGuid": record.get("personGuid"),
        "title": record.get("title"),
        "forename": record.get("forename"),
        "middleNames": record.get("middlenames"),
        "surname": record.get("surname"),
        "preferredName": record.get("preferredName"),
        "fullName": record.get("fullName"),
        "dateOfBirth": record.get("dob"),
        "gender": record.get("gender"),
        "schoolEmailAddress": record.get("schoolEmailAddress"),
        "mobileNumber": record.get("mobileNumber"),
        "nationalities": record.get("nationalities"),
        "languages": record.get("languages"),
        "residentCountry": record.get("residentCountry"),
        "admissionStatus": ADMISSION_STATUS,
        "enrolmentDate": record.get("enrolmentDate"),
        "enrolmentSchoolYear": school_year(record.get("enrolmentDate")),
        "enrolmentSchoolYearGroup": record.get("yearGroup"),
        "systemStatus": record.get("systemStatus"),
        "lastUpdated": record.get("lastUpdated"),
    }


def expansions(values: Iterable[str] | None) -> set[str]:
    """Accept `expand=a,b` and repeated `expand=a&expand=b` alike."""
    return {part.strip() for value in values or () for part in value.split(",") if part.strip()}
