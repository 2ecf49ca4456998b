"""Mask a personal value for plans and reports: enough to recognise, too little to read.

docs/design.md §6: personal values in plans and reports are masked (`J… D…`, `j…@e…`);
field names are not. A support desk reading a plan sees which fields change and that the
new value is another one, while a plan pasted into a ticket or a chat shows no child's name,
e-mail, birthday or telephone number. Every word keeps its first letter only, an e-mail the
first letter of its mailbox and of its domain, a date its shape; digits never show.
"""

from __future__ import annotations

import re

EMPTY = "—"
DATE = "####-##-##"
_DATE = re.compile(r"\s*\d{4}-\d{2}-\d{2}")


def mask(value: object) -> str:
    """Return `value` masked: `John Doe` → `J… D…`, `jo@example.org` → `j…@e…`,
    `2014-12-10` → `####-##-##`, `07700 900123` → `#… #…`, `[GB, FR]` → `[G…, F…]`.

    None, `""` and an empty list show as `—` (emptiness is no secret, and a clear reads as
    one). Numbers of any kind show as `#…`.
    """
    if value is None or value == "" or value == [] or value == ():
        return EMPTY
    if isinstance(value, list | tuple):
        return "[" + ", ".join(mask(item) for item in value) + "]"
    if isinstance(value, bool | int | float):
        return "#…"
    text = str(value).strip()
    if not text:
        return EMPTY
    if _DATE.match(text):
        return DATE
    if "@" in text:
        mailbox, _, domain = text.rpartition("@")
        return f"{_initial(mailbox)}@{_initial(domain)}"
    return " ".join(_initial(word) for word in text.split())


def _initial(word: str) -> str:
    """Return a word's first character and an ellipsis; a digit shows as `#`."""
    if not word:
        return "…"
    first = word[0]
    return ("#" if first.isdigit() else first) + "…"
