"""Check-digit rules for the Norwegian identifiers on the wire.

Pure functions: the contract models use them to reject bad input at the edge, and the
privacy scanner uses them to recognise a patient identifier wherever it might leak.
"""

from __future__ import annotations

import re
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
# JSON reader, though no run of its digits is one. Only a token read as a number: no part
# of a word or a longer number (a letter, digit, `_` or `.` glued on its left, a letter or
# digit on its right), nor of a run joined by dashes, as a UUID's hex parts are
# (`86b7-a2e68730a4a5`; `100072e5-9631-...`, though 10007200000 passes the check digits).
# A JSON escape is passed over as well: `\u002e56715` has a letter before `002e56715`.
# The whole part, fraction and exponent are caught apart, for `_eleven_digit_value`.
_EXPONENT_NUMBER = re.compile(r"(?<![\w.])(?<!\w-)(\d+)(?:\.(\d+))?[eE]([+-]?\d+)(?![^\W_])(?!-\w)")
# A digit (any decimal digit or a digit's JSON escape) or any other JSON escape, one at a time.
_DIGIT_OR_ESCAPE = re.compile(r"\\u[0-9a-fA-F]{4}|\d")
_DIGIT_ESCAPE = re.compile(r"\\u003[0-9]")
# Eleven zeros pass the check digits (every weighted sum is 0), but are no one's id.
_ELEVEN_ZEROS = "0" * 11


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
            found.extend(w for w in (run[i : i + 11] for i in range(len(run) - 10)) if _is_patient_id(w))
        elif _is_patient_id(first + rest):
            found.append(first + rest)
    return found


def digits_read_as_patient_ids(text: str) -> list[str]:
    """The digits in `text` that `find_patient_ids` checks, as written, whether they pass the
    check digits or not: each run of 11 or more, and each 6 and 5 with a separator between
    (all zeros left out: never anyone's id). An id holding one is refused whenever its
    digits pass the check digits: for ids made by a scheme, now and then, by chance."""
    return [
        written
        for written in (m.group() for m in _PATIENT_ID_CANDIDATE.finditer(text))
        if written.strip("0" + PATIENT_ID_SEPARATORS)
    ]


def _is_patient_id(digits: str) -> bool:
    """11 ASCII digits that pass the check digits and are not all zeros (`00000000000`
    passes them trivially, and is no one's id: the nil UUID's last part holds it)."""
    return digits != _ELEVEN_ZEROS and is_valid_patient_id(digits)


def redact_patient_ids(text: str) -> str:
    """Blank out every run of 11 digits or more, and every 6 + 5 digits written with a
    separator between (`PATIENT_ID_SEPARATORS`), valid or not: a mistyped number is still
    personal data, and so is one with a digit too many. A digit may be any decimal digit,
    and a digit or separator may be written as a JSON escape. Digits that are all zeros
    are kept: they are no one's id (a nil UUID's last part is twelve of them).

    Blanked too is a number in exponent form that is read as a patient id: a token a JSON
    reader (or a person) reads as a number, not a fragment of a word, a longer number or a
    UUID, whose value is an integer of exactly 11 digits that passes the check digits
    (`3.1129956715e10` is 31129956715). Other numbers in exponent form (`2.5e2`, a DRG
    weight; `2e68730`) are kept."""
    text = _EXPONENT_NUMBER.sub(_redact_if_a_patient_id, text)
    text = _ELEVEN_OR_MORE_DIGITS.sub(_redact_unless_all_zeros, text)
    return _WRITTEN_PATIENT_ID_TO_REDACT.sub(_redact_unless_all_zeros, text)


def _redact_unless_all_zeros(written: re.Match[str]) -> str:
    for token in _DIGIT_OR_ESCAPE.findall(written.group()):
        if token.startswith("\\"):  # a JSON escape: a digit's, or a separator's
            if _DIGIT_ESCAPE.fullmatch(token) and token[-1] != "0":
                return "[redacted]"
        elif int(token) != 0:  # any decimal digit
            return "[redacted]"
    return written.group()


def _redact_if_a_patient_id(number: re.Match[str]) -> str:
    whole, fraction, exponent = number.group(1, 2, 3)
    value = _eleven_digit_value(whole, fraction or "", exponent)
    return "[redacted]" if value is not None and _is_patient_id(value) else number.group()


def _eleven_digit_value(whole: str, fraction: str, exponent: str) -> str | None:
    """The value of the number `whole.fraction` x 10^`exponent` (decimal digits of any script),
    in 11 ASCII digits, if it is an integer of exactly 11 digits (10^10 <= value < 10^11).

    Exact, in integers: the value is `significant` x 10^`scale`, the mantissa's digits without
    its leading and trailing zeros times a power of ten, and it is such an integer exactly when
    `scale` is 11 less the number of those digits (never negative: at most 11 of them). No
    float, which rounds (`3112995671.50000000001e1` is no integer) and overflows; no power
    is computed either: `2e68730`, or an exponent of 5000 digits, is refused by its length."""
    mantissa = _ascii_digits(whole + fraction)
    significant = mantissa.strip("0")
    if not significant or len(significant) > 11:  # zero; more digits than 11, or a fraction
        return None
    magnitude = _ascii_digits(exponent.lstrip("+-")).lstrip("0") or "0"
    if len(magnitude) > 18:  # beyond what any text's length could make up for (and int() refuses 4300)
        return None
    trailing_zeros = len(mantissa) - len(mantissa.rstrip("0"))
    scale = (-int(magnitude) if exponent.startswith("-") else int(magnitude)) - len(fraction) + trailing_zeros
    if scale != 11 - len(significant):
        return None
    return significant + "0" * scale


def _ascii_digits(digits: str) -> str:
    """Decimal digits of any script (`３`, `٣`) as ASCII ones."""
    return digits if digits.isascii() else "".join(chr(_ZERO + int(d)) for d in digits)


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
