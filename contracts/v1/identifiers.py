"""Check-digit rules for the Norwegian identifiers on the wire.

Pure functions: the contract models use them to reject bad input at the edge, and the
privacy scanner uses them to recognise a patient identifier wherever it might leak.
"""

from __future__ import annotations

import re
from functools import lru_cache
from operator import mul

_FNR_K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_FNR_K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_ORG_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)

MUNICIPALITY_NUMBER_PATTERN = r"^[0-9]{4}$"
ORGANISATION_NUMBER_PATTERN = r"^[0-9]{9}$"
PATIENT_ID_PATTERN = r"^[0-9]{11}$"

_ELEVEN_OR_MORE_DIGITS = re.compile(r"(?<![0-9])[0-9]{11,}(?![0-9])")
_WRITTEN_PATIENT_ID = re.compile(r"(?<![0-9])([0-9]{6})[ .-]?([0-9]{5})(?![0-9])")


_ZERO = ord("0")
_PATIENT_ID = re.compile(PATIENT_ID_PATTERN)
_ORGANISATION_NUMBER = re.compile(ORGANISATION_NUMBER_PATTERN)


def _mod11_check_digit(digits: bytes, weights: tuple[int, ...]) -> int | None:
    """11 - (weighted sum mod 11); 11 means 0 and 10 means no valid check digit exists."""
    # map(mul) over the ASCII codes, minus the codes' share: this runs for every inbound
    # event, and a Python-level loop over the digits cost several times as much.
    weighted: int = sum(map(mul, digits, weights))
    check = 11 - (weighted - _ZERO * sum(weights)) % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def is_valid_patient_id(value: str) -> bool:
    """A fødselsnummer or D-number (first digit + 4) with both check digits right.

    The day/month part is not checked against a calendar: synthetic test numbers and
    H-numbers would fail that, while the check digits alone already catch typing errors.
    """
    if not _PATIENT_ID.fullmatch(value):
        return False
    digits = value.encode("ascii")
    k1 = _mod11_check_digit(digits, _FNR_K1_WEIGHTS)
    if k1 is None or k1 != digits[9] - _ZERO:
        return False
    k2 = _mod11_check_digit(digits, _FNR_K2_WEIGHTS)
    return k2 is not None and k2 == digits[10] - _ZERO


# Organisation numbers are public and few (about twenty health trusts send events): the
# answer is remembered. Patient identifiers are never remembered.
@lru_cache(maxsize=4096)
def is_valid_organisation_number(value: str) -> bool:
    """Brønnøysund organisation number: 9 digits, mod-11 check digit (remainder 1 is invalid)."""
    if not _ORGANISATION_NUMBER.fullmatch(value):
        return False
    digits = value.encode("ascii")
    check = _mod11_check_digit(digits, _ORG_WEIGHTS)
    return check is not None and check == digits[8] - _ZERO


@lru_cache(maxsize=4096)  # public numbers, a few hundred of them
def is_well_formed_municipality_number(value: str) -> bool:
    """Four digits with a county part 01-99. Whether the number existed on a date is not
    a question of form; the municipality registry answers it."""
    return bool(re.fullmatch(MUNICIPALITY_NUMBER_PATTERN, value)) and value[:2] != "00"


def find_patient_ids(text: str) -> list[str]:
    """Every patient id written in `text` that passes the check digits: 11 digits in a run,
    or 6 and 5 with a space, dash or dot between (how a fødselsnummer is often written)."""
    return [a + b for a, b in _WRITTEN_PATIENT_ID.findall(text) if is_valid_patient_id(a + b)]


def redact_patient_ids(text: str) -> str:
    """Blank out every run of 11 digits or more, and every 6 + 5 digits written with a
    space, dash or dot between, valid or not: a mistyped number is still personal data, and
    so is one with a digit too many."""
    return _WRITTEN_PATIENT_ID.sub("[redacted]", _ELEVEN_OR_MORE_DIGITS.sub("[redacted]", text))
