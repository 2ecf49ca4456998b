"""iSAMS records as the REST API sends them, for the sync tests: one pupil, contact or
member of staff with every field the sync reads set to something plausible."""

from __future__ import annotations

from typing import Any

from consumers.ports import Record

T0 = "2026-11-01T09:00:00"
T1 = "2026-11-02T09:00:00"
T2 = "2026-11-03T09:00:00"


def a_student(school_id: str = "S1", **fields: Any) -> Record:
    """A current pupil in year 7 (mapped), with a school e-mail."""
    return {
        "id": int(school_id.lstrip("S") or 0),
        "schoolId": school_id,
        "schoolCode": f"C-{school_id}",
        "forename": "Ada",
        "surname": "Lovelace",
        "gender": "F",
        "dob": "2014-12-10T00:00:00",
        "yearGroup": 7,
        "systemStatus": "Current",
        "schoolEmailAddress": f"{school_id.lower()}@school.example",
        "enrolmentDate": "2024-09-01T00:00:00",
        "lastUpdated": T0,
        **fields,
    }


def a_contact(contact_id: int, student: str, person: str, **fields: Any) -> Record:
    """A pupil's contact of a mapped type (Parents), with an e-mail: it syncs as a parent."""
    return {
        "id": contact_id,
        "schoolId": student,
        "personId": int(person.lstrip("P") or 0) if person.startswith("P") else None,
        "personGuid": f"{person}-guid",
        "contactType": "Parents",
        "relationship": "Mother",
        "parentalResponsibility": "Yes",
        "title": "Mrs",
        "forename": "Mary",
        "surname": "Lovelace",
        "emailAddress": f"{person.lower()}@family.example",
        "mobileNumber": "07700 900001",
        "deceased": False,
        "lastUpdated": T0,
        **fields,
    }


def an_employee(employee_id: int = 17, **fields: Any) -> Record:
    """A current member of staff with a school e-mail (iSAMS gives staff no lastUpdated)."""
    return {
        "id": employee_id,
        "personGuid": f"E{employee_id}-guid",
        "title": "Dr",
        "forename": "Alan",
        "surname": "Turing",
        "gender": "M",
        "schoolEmailAddress": f"teacher{employee_id}@school.example",
        "isTeachingStaff": True,
        "systemStatus": "Current",
        **fields,
    }
