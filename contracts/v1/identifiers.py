"""Check-digit rules for the Norwegian identifiers on the wire.

Pure functions: the contract models use them to reject bad input at the edge, and the
privacy scanner uses them to recognise a patient identifier wherever it might leak.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from operator import mul

# The weights of the mod-11 rules, each followed by its check digit's own weight, 1: the
# check digit k = 11 - (weighted sum mod 11), 11 meaning 0, is right exactly when the
# weighted sum plus k is a multiple of 11. A k of 10, which no digit can be, then never is.
_FNR_K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2, 1)
_FNR_K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2, 1)
_ORG_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2, 1)

WELL_FORMED_MUNICIPALITY_NUMBER_PATTERN = r"^(0[1-9]|[1-9][0-9])[0-9]{2}$"  # county 01-99
ORGANISATION_NUMBER_PATTERN = r"^[0-9]{9}$"
PATIENT_ID_PATTERN = r"^[0-9]{11}$"

# What may stand between the 6 and the 5 digits of a patient id as people write it: a space
# (also a no-break one), a dash (also the typographic ones and the minus sign), a dot, and
# the other separators an id may hold (`_`, `:`, `/`).
PATIENT_ID_SEPARATORS = " \u00a0\u202f-\u2010\u2011\u2012\u2013\u2014\u2015\u2212._:/"
# The forms `find_patient_ids` finds, in words, for the messages that refuse them.
PATIENT_ID_FORMS = "11 digits, or 6 and 5 with a space, dash, dot, _, : or / between, that pass a fødselsnummer's check digits"
_SEPARATOR_CLASS = "[" + re.escape(PATIENT_ID_SEPARATORS) + "]"
# 6 and 5 digits with a separator between, or a run of 11 digits or more.
_PATIENT_ID_CANDIDATE = re.compile(
    rf"(?<![0-9])(?:([0-9]{{6}}){_SEPARATOR_CLASS}([0-9]{{5}})(?![0-9])|([0-9]{{11,}}))"
)
# What is redacted may be JSON text (a rejected payload is kept as the text it came as), in
# which a digit or a separator may be written as an escape: `\u0033` is a 3 to any reader.
# A digit is any decimal digit (`\d`): `３` or `٣` is no patient id, but reads as a 3.
_DIGIT = r"(?:\d|\\u003[0-9])"
_ESCAPED_SEPARATOR = "|".join(
    "\\\\u" + "".join(f"[{h.lower()}{h.upper()}]" if h.isalpha() else h for h in f"{ord(c):04x}")
    for c in PATIENT_ID_SEPARATORS
)
_SEPARATOR = rf"(?:{_SEPARATOR_CLASS}|{_ESCAPED_SEPARATOR})"
# A digit or a separator as a JSON escape, alone: what may be left of a number a text was cut in.
_ESCAPED_NUMBER_CHARACTER = re.compile(rf"\\u003[0-9]|{_ESCAPED_SEPARATOR}")
_ESCAPE_CUT_AT_THE_END = re.compile(r"\\(?:u[0-9a-fA-F]{0,3})?\Z")
_SEPARATORS = frozenset(PATIENT_ID_SEPARATORS)
_NO_DIGIT_BEFORE, _NO_DIGIT_AFTER = r"(?<!\d)(?<!\\u003[0-9])", r"(?!\d)(?!\\u003[0-9])"
_ELEVEN_OR_MORE_DIGITS = re.compile(rf"{_NO_DIGIT_BEFORE}{_DIGIT}{{11,}}{_NO_DIGIT_AFTER}")
_WRITTEN_PATIENT_ID_TO_REDACT = re.compile(
    rf"{_NO_DIGIT_BEFORE}{_DIGIT}{{6}}{_SEPARATOR}?{_DIGIT}{{5}}{_NO_DIGIT_AFTER}"
)
# A number in exponent form (`3.1129956715e10`), as a JSON number or in text: an id to any
# JSON reader, though no run of its digits is one.
# JSON escapes are matched to be passed over: `\u002e56715` holds no number `002e56715`.
_EXPONENT_NUMBER = re.compile(r"\\u[0-9a-fA-F]{4}|(?<!\d)(\d+(?:\.\d+)?[eE][+-]?\d+)(?!\d)")


_ZERO = ord("0")
_ORGANISATION_NUMBER = re.compile(ORGANISATION_NUMBER_PATTERN)
_WELL_FORMED_MUNICIPALITY_NUMBER = re.compile(WELL_FORMED_MUNICIPALITY_NUMBER_PATTERN)
# The weighted sums are taken over ASCII codes: this is what the codes add beyond the digits.
_K1_ASCII_SHARE = _ZERO * sum(_FNR_K1_WEIGHTS)
_K2_ASCII_SHARE = _ZERO * sum(_FNR_K2_WEIGHTS)
_ORG_ASCII_SHARE = _ZERO * sum(_ORG_WEIGHTS)


def is_valid_patient_id(value: str) -> bool:
    """A fødselsnummer or D-number (first digit + 4) with both check digits right.

    The day/month part is not checked against a calendar: synthetic test numbers and
    H-numbers would fail that, while the check digits alone already catch typing errors.
    """
    if len(value) != 11 or not (value.isascii() and value.isdigit()):
        return False
    # Run for every inbound event: map(mul) over the ASCII codes costs a fraction of a
    # Python loop over the digits.
    digits = value.encode("ascii")
    k1_sum: int = sum(map(mul, digits, _FNR_K1_WEIGHTS))
    k2_sum: int = sum(map(mul, digits, _FNR_K2_WEIGHTS))
    return (k1_sum - _K1_ASCII_SHARE) % 11 == 0 and (k2_sum - _K2_ASCII_SHARE) % 11 == 0


# Organisation numbers are public and few (about twenty health trusts send events): the
# answer is remembered. Patient identifiers are never remembered.
@lru_cache(maxsize=4096)
def is_valid_organisation_number(value: str) -> bool:
    """Brønnøysund organisation number: 9 digits, mod-11 check digit (remainder 1 is invalid)."""
    if not _ORGANISATION_NUMBER.fullmatch(value):
        return False
    weighted: int = sum(map(mul, value.encode("ascii"), _ORG_WEIGHTS))
    return (weighted - _ORG_ASCII_SHARE) % 11 == 0


def is_well_formed_municipality_number(value: str) -> bool:
    """Four digits with a county part 01-99. Whether the number existed on a date is not
    a question of form; the municipality registry answers it."""
    return bool(_WELL_FORMED_MUNICIPALITY_NUMBER.fullmatch(value))


def find_patient_ids(text: str) -> list[str]:
    """Every patient id written in `text` that passes the check digits: 11 digits in a run,
    also inside a longer one (an id made of the number and a sequence number holds it all
    the same), or 6 and 5 with a separator between (`PATIENT_ID_SEPARATORS`: how a
    fødselsnummer is often written, and what an id may hold)."""
    found: list[str] = []
    for first, rest, run in _PATIENT_ID_CANDIDATE.findall(text):
        if run:
            found.extend(w for w in (run[i : i + 11] for i in range(len(run) - 10)) if is_valid_patient_id(w))
        elif is_valid_patient_id(first + rest):
            found.append(first + rest)
    return found


def redact_patient_ids(text: str) -> str:
    """Blank out every run of 11 digits or more, every 6 + 5 digits written with a
    separator between (`PATIENT_ID_SEPARATORS`), and every number of 11 digits or more in
    exponent form, valid or not: a mistyped number is still personal data, and so is one
    with a digit too many. A digit may be any decimal digit, and a digit or separator may be
    written as a JSON escape."""
    text = _EXPONENT_NUMBER.sub(_redact_if_eleven_digits_or_more, text)
    return _WRITTEN_PATIENT_ID_TO_REDACT.sub("[redacted]", _ELEVEN_OR_MORE_DIGITS.sub("[redacted]", text))


def _redact_if_eleven_digits_or_more(number: re.Match[str]) -> str:
    """Exponent forms of small numbers (`1e-3`, a DRG weight) are kept: only a number of 11
    digits or more before its point may be an id (or as much personal data as a mistyped one)."""
    written = number.group(1)
    if written is None:  # a JSON escape
        return number.group()
    try:  # compared by the place of its first digit: arithmetic would overflow on `1e99999999`
        value = Decimal(written)
    except InvalidOperation:  # digits of other scripts mixed in a way Decimal refuses
        return "[redacted]"
    return "[redacted]" if value.adjusted() >= 10 and not value.is_zero() else written


def without_a_number_at_the_end(text: str) -> str:
    """`text`, cut somewhere, without the number the cut went through: what is left of it is
    too short to be redacted, and 9 of a patient id's 11 digits give away the whole of it.
    Its digits (any decimal digits) and separators go, as themselves or as JSON escapes, an
    exponent's `e` and `+`, and an escape the cut went through. (Taken off from the end, not by a pattern anchored there:
    that is tried at every position of a long run of digits.)"""
    cut_escape = _ESCAPE_CUT_AT_THE_END.search(text, max(0, len(text) - 5))
    end = cut_escape.start() if cut_escape else len(text)
    while end:
        if end >= 6 and _ESCAPED_NUMBER_CHARACTER.fullmatch(text, end - 6, end):
            end -= 6
        elif text[end - 1].isdecimal() or text[end - 1] in _SEPARATORS:
            end -= 1
        elif text[end - 1] in "eE" and end >= 2 and text[end - 2].isdecimal():
            end -= 1  # cut in an exponent: the number's digits before it go too
        elif text[end - 1] == "+" and end >= 3 and text[end - 2] in "eE" and text[end - 3].isdecimal():
            end -= 1
        else:
            break
    return text[:end]
