"""Personal data in text: find and scrub e-mail addresses, phone numbers, Chinese resident ID numbers (with
their checksum), payment card numbers (with the Luhn check) and IP addresses.

    scrub("mail me at ann@example.com or 138 0013 8000")  ->  "mail me at [email] or [phone]"
    find_personal_data(text) -> [PersonalData(kind="email", start=11, end=26, text="ann@example.com"), ...]

Checksums keep the false positives down: an 18-digit number is only an ID when its last character is the
ISO 7064 MOD 11-2 check of the first 17 and its date of birth is a real date; a 13-19 digit run is only a
card when the Luhn sum is 0 mod 10. `ScrubbingFilter` applies the same to log records, so prompts that
reach a log never leave personal data there.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import re
from dataclasses import dataclass

PLACEHOLDERS = {"email": "[email]", "cn_id": "[cn-id]", "card": "[card]", "ip": "[ip]", "phone": "[phone]"}


@dataclass(frozen=True)
class PersonalData:
    kind: str  # one of PLACEHOLDERS
    start: int  # character offsets in the text
    end: int
    text: str


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CN_ID = re.compile(r"(?<![0-9])[1-9][0-9]{16}[0-9Xx](?![0-9A-Za-z])")
_CARD = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])")
_IPV4 = re.compile(r"(?<![0-9.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9]|\.[0-9])")
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])")
# Mainland mobiles (1[3-9] + 9 digits), international numbers (+CC ...), and (555) 123-4567 style numbers.
_PHONE = re.compile(
    r"(?<![0-9+])(?:\+[1-9][0-9]{0,2}[ -]?)?(?:1[3-9][0-9](?:[ -]?[0-9]{4}){2}|\(?[0-9]{3}\)?[ .-]?[0-9]{3}[ .-][0-9]{4})(?![0-9])"
    r"|(?<![0-9])\+[1-9][0-9]{0,2}(?:[ -]?[0-9]{2,4}){2,5}(?![0-9])"
)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"  # GB 11643-1999: check character for (sum of weighted digits) mod 11


def cn_id_valid(number: str) -> bool:
    """A Chinese resident ID (18 characters): a real birth date and the right check character."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    try:
        born = datetime.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    if not datetime.date(1900, 1, 1) <= born <= datetime.date.today():
        return False
    total = sum(int(digit) * weight for digit, weight in zip(number[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == number[17].upper()


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check that every payment card number passes (ISO/IEC 7812-1)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _ip_valid(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def find_personal_data(text: str) -> list[PersonalData]:
    """Every piece of personal data in `text`, in order, none overlapping (the first kind found wins:
    e-mail, ID, card, IP, phone — the more specific checks first)."""
    found: list[PersonalData] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, match: re.Match) -> None:
        start, end = match.span()
        if any(start < b and a < end for a, b in taken):
            return
        taken.append((start, end))
        found.append(PersonalData(kind, start, end, match.group()))

    for match in _EMAIL.finditer(text):
        add("email", match)
    for match in _CN_ID.finditer(text):
        if cn_id_valid(match.group()):
            add("cn_id", match)
    for match in _CARD.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            add("card", match)
    for pattern in (_IPV4, _IPV6):
        for match in pattern.finditer(text):
            if _ip_valid(match.group()):
                add("ip", match)
    for match in _PHONE.finditer(text):
        add("phone", match)
    return sorted(found, key=lambda item: item.start)


def scrub(text: str) -> str:
    """`text` with each piece of personal data replaced by its placeholder ("[email]", "[phone]", ...)."""
    pieces, last = [], 0
    for item in find_personal_data(text):
        pieces += [text[last : item.start], PLACEHOLDERS[item.kind]]
        last = item.end
    return "".join(pieces) + text[last:]


TEXT_FIELDS = ("prompt", "negative_prompt")  # the request fields that carry what a user typed


def scrub_request(request, fields: tuple[str, ...] = TEXT_FIELDS):
    """A copy of a request (a pydantic model) whose text fields (a string or a list of strings) are
    scrubbed: what the studio stores and runs when prompt scrubbing is on."""
    update = {}
    for name in fields:
        value = getattr(request, name, None)
        if isinstance(value, str):
            update[name] = scrub(value)
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            update[name] = [scrub(item) for item in value]
    return request.model_copy(update=update) if update else request


_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class ScrubbingFilter(logging.Filter):
    """A logging filter that scrubs personal data from each record's message (and its arguments) and from
    the text values of its `extra` fields before any handler formats it. Add it to a handler:
    `handler.addFilter(ScrubbingFilter())`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        for name, value in list(vars(record).items()):
            if name not in _RECORD_FIELDS and isinstance(value, str):
                setattr(record, name, scrub(value))
        return True


def scrub_logs(handler: logging.Handler) -> logging.Handler:
    """Make `handler` scrub personal data from every record it writes; returns it."""
    if not any(isinstance(f, ScrubbingFilter) for f in handler.filters):
        handler.addFilter(ScrubbingFilter())
    return handler
