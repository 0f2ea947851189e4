"""Masking of personal data (ID numbers, phone numbers) for logs, lists and notifications."""

from __future__ import annotations

import re

_NUMBERS = re.compile(r"\d{17}[\dXx]|\d{7,}")
"""An ID number (18 characters) or a phone-like run of 7 or more digits inside free text."""
_EMAIL = re.compile(r"([A-Za-z0-9._+-]+)(@|%40)([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
"""An e-mail address, also URL-encoded (``%40``) as in a channel URL's path."""


def mask_id_number(value: str | None) -> str:
    """Mask a resident ID number, keeping the first four and last four characters.

    >>> mask_id_number("110101194001010024")
    '1101**********0024'
    >>> mask_id_number("12345")
    '*****'
    >>> mask_id_number(None)
    ''
    """
    if not value:
        return ""
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_phone(value: str | None) -> str:
    """Mask a phone number: the four digits before the last four become ``*``; short numbers are fully masked.

    >>> mask_phone("13900000001")
    '139****0001'
    >>> mask_phone("+86 139 0000 0001")
    '+86 139 **** 0001'
    >>> mask_phone("1234567")
    '*******'
    """
    if not value:
        return ""
    positions = [i for i, ch in enumerate(value) if ch.isdigit()]
    hidden = set(positions) if len(positions) <= 7 else set(positions[-8:-4])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(value))


def mask_numbers_in_text(text: str) -> str:
    """Mask phone numbers and ID numbers written inside free text (a reason, a note) before it is logged or audited.

    >>> mask_numbers_in_text("住女儿家，电话 13912345678，身份证 11010119400101002X")
    '住女儿家，电话 139****5678，身份证 1101**********002X'
    >>> mask_numbers_in_text("至 12月10日 18:00")
    '至 12月10日 18:00'
    """
    return _NUMBERS.sub(lambda m: mask_id_number(m[0]) if len(m[0]) == 18 else mask_phone(m[0]), text)


def mask_contact(text: str) -> str:
    """Mask the numbers and e-mail addresses a notification channel's description names (audit, logs).

    A channel URL's privacy form hides passwords and tokens, not the number or address it sends to.

    >>> mask_contact("json://127.0.0.1:8080/sms/13912345678?method=POST")
    'json://127.0.0.1:8080/sms/139****5678?method=POST'
    >>> mask_contact("mailto://user:****@example.org/wang.fang%40example.org?cto=15")
    'mailto://user:****@example.org/w***%40example.org?cto=15'
    """
    return _EMAIL.sub(lambda m: f"{m[1][0]}***{m[2]}{m[3]}", mask_numbers_in_text(text))
