"""Check-digit rules for the identifiers on the wire (domain.md "The parties")."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.v1.identifiers import (
    PATIENT_ID_SEPARATORS,
    digits_read_as_patient_ids,
    find_patient_ids,
    is_valid_organisation_number,
    is_valid_patient_id,
    is_well_formed_municipality_number,
    redact_patient_ids,
)

# ---------------------------------------------------------------- the rule, from domain.md

K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2)
K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
ORG_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)


def check_digit(digits: str, weights: tuple[int, ...]) -> int | None:
    """11 - (weighted sum mod 11); 11 means 0, 10 means the number is invalid."""
    result = 11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    return {11: 0, 10: None}.get(result, result)


def with_patient_check_digits(nine: str) -> str | None:
    k1 = check_digit(nine, K1_WEIGHTS)
    if k1 is None:
        return None
    k2 = check_digit(nine + str(k1), K2_WEIGHTS)
    if k2 is None:
        return None
    return f"{nine}{k1}{k2}"


def first_valid_patient_id(birth_date: str) -> str:
    """The first individual number (from 500) that gives valid check digits."""
    for individual in range(500, 1000):
        number = with_patient_check_digits(f"{birth_date}{individual:03d}")
        if number is not None:
            return number
    raise AssertionError(f"no valid number for {birth_date}")


def d_number(birth_date: str) -> str:
    """A D-number: the first digit of the birth date plus 4, with fresh check digits."""
    return first_valid_patient_id(str(int(birth_date[0]) + 4) + birth_date[1:])


def digits_whose_k1_is_impossible() -> str:
    """Nine digits for which k1 would be 10: no 11-digit number starting so is valid."""
    for individual in range(1000):
        nine = f"010190{individual:03d}"
        if check_digit(nine, K1_WEIGHTS) is None:
            return nine
    raise AssertionError("none found")


def test_the_test_helper_reproduces_the_example_from_domain_md() -> None:
    assert with_patient_check_digits("311299567") == "31129956715"


EXAMPLE = "31129956715"
D_NUMBER = d_number("311299")
D_NUMBER_EARLY_MONTH = d_number("010203")
FODSELSNUMMER_2003 = first_valid_patient_id("010203")


def test_the_d_numbers_used_here_have_the_first_digit_plus_four() -> None:
    assert D_NUMBER[0] == "7" and D_NUMBER[1:6] == "11299"
    assert D_NUMBER_EARLY_MONTH[0] == "4" and D_NUMBER_EARLY_MONTH[1:6] == "10203"


# ---------------------------------------------------------------- patient identifiers


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(EXAMPLE, id="domain-md-example"),
        pytest.param(D_NUMBER, id="d-number"),
        pytest.param(D_NUMBER_EARLY_MONTH, id="d-number-day-01"),
        pytest.param(FODSELSNUMMER_2003, id="computed-fodselsnummer"),
    ],
)
def test_a_number_with_both_check_digits_right_is_a_valid_patient_id(value: str) -> None:
    assert is_valid_patient_id(value)


def wrong_digit(number: str, position: int) -> str:
    return number[:position] + str((int(number[position]) + 1) % 10) + number[position + 1 :]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(wrong_digit(EXAMPLE, 9), id="wrong-k1"),
        pytest.param(wrong_digit(EXAMPLE, 10), id="wrong-k2"),
        pytest.param(wrong_digit(EXAMPLE, 4), id="typo-in-the-birth-date"),
        pytest.param(wrong_digit(D_NUMBER, 10), id="d-number-with-wrong-k2"),
        pytest.param(digits_whose_k1_is_impossible() + "00", id="k1-would-be-10"),
        pytest.param(EXAMPLE[:10], id="ten-digits"),
        pytest.param(EXAMPLE + "0", id="twelve-digits"),
        pytest.param("3112995671a", id="a-letter"),
        pytest.param("abcdefghijk", id="letters"),
        pytest.param("311299 56715", id="with-a-space"),
        pytest.param(EXAMPLE + "\n", id="with-a-newline"),
        pytest.param("", id="empty"),
        pytest.param("٣١١٢٩٩٥٦٧١٥", id="non-ascii-digits"),
    ],
)
def test_a_number_failing_the_rules_is_not_a_patient_id(value: str) -> None:
    assert not is_valid_patient_id(value)


# ---------------------------------------------------------------- organisation numbers

# Every number listed in domain.md, regional authorities (RHF) and trusts (HF).
DOMAIN_ORGANISATION_NUMBERS = [
    "991324968", "983971636", "993467049", "883971752", "983971709", "983971768",
    "983975259", "983975267", "983975240", "894166762",
    "983658725", "983974724", "983974694", "983974732", "983974678",
    "983658776", "883974832", "997005562", "983974791",
    "883658752", "983974880", "983974899", "983974910", "983974929",
]  # fmt: skip


def test_the_helper_agrees_that_every_listed_number_passes_mod_11() -> None:
    for number in DOMAIN_ORGANISATION_NUMBERS:
        assert check_digit(number[:8], ORG_WEIGHTS) == int(number[8]), number


@pytest.mark.parametrize("number", DOMAIN_ORGANISATION_NUMBERS)
def test_every_health_trust_number_in_domain_md_is_a_valid_organisation_number(number: str) -> None:
    assert is_valid_organisation_number(number)


@pytest.mark.parametrize("number", DOMAIN_ORGANISATION_NUMBERS)
def test_changing_the_last_digit_of_an_organisation_number_makes_it_invalid(number: str) -> None:
    for digit in "0123456789":
        if digit != number[8]:
            assert not is_valid_organisation_number(number[:8] + digit), digit


def eight_digits_with_remainder_one() -> str:
    for n in range(98300000, 98400000):
        if sum(int(d) * w for d, w in zip(str(n), ORG_WEIGHTS, strict=True)) % 11 == 1:
            return str(n)
    raise AssertionError("none found")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("98397472", id="eight-digits"),
        pytest.param("9839747240", id="ten-digits"),
        pytest.param("983 974 724", id="with-spaces"),
        pytest.param("98397472x", id="a-letter"),
        pytest.param("", id="empty"),
    ],
)
def test_a_malformed_organisation_number_is_invalid(value: str) -> None:
    assert not is_valid_organisation_number(value)


def test_an_organisation_number_whose_remainder_is_one_is_invalid_whatever_the_last_digit() -> None:
    prefix = eight_digits_with_remainder_one()

    assert not any(is_valid_organisation_number(prefix + d) for d in "0123456789")


# ---------------------------------------------------------------- municipality numbers


@pytest.mark.parametrize("value", ["0301", "4601", "4624", "1508", "1580", "5501", "3201", "0101"])
def test_a_four_digit_number_with_a_county_part_is_a_well_formed_municipality_number(value: str) -> None:
    assert is_well_formed_municipality_number(value)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("0000", id="county-00"),
        pytest.param("0099", id="county-00-with-a-number"),
        pytest.param("301", id="leading-zero-lost"),
        pytest.param("04601", id="five-digits"),
        pytest.param("46O1", id="letter-o"),
        pytest.param(" 301", id="space-padded"),
        pytest.param("0301\n", id="with-a-newline"),
        pytest.param("", id="empty"),
    ],
)
def test_a_number_not_of_municipality_form_is_refused(value: str) -> None:
    assert not is_well_formed_municipality_number(value)


# ---------------------------------------------------------------- finding and redacting


def test_redaction_removes_every_eleven_digit_run_valid_or_not() -> None:
    invalid = wrong_digit(EXAMPLE, 10)
    text = f"patient {EXAMPLE} moved; typo {invalid},id={D_NUMBER}."

    redacted = redact_patient_ids(text)

    assert redacted == "patient [redacted] moved; typo [redacted],id=[redacted]."
    assert EXAMPLE not in redacted and invalid not in redacted and D_NUMBER not in redacted


def json_escaped(text: str, every: int = 1) -> str:
    """`text` with every `every`-th character written as a JSON escape (`3` as `\\u0033`)."""
    return "".join(f"\\u{ord(c):04x}" if i % every == 0 else c for i, c in enumerate(text))


@pytest.mark.parametrize(
    "written",
    [
        pytest.param(json_escaped(EXAMPLE), id="every-digit-escaped"),
        pytest.param(json_escaped(EXAMPLE, every=2), id="every-other-digit-escaped"),
        pytest.param(EXAMPLE[:10] + json_escaped(EXAMPLE[10]), id="last-digit-escaped"),
        pytest.param(json_escaped(f"{EXAMPLE[:6]} {EXAMPLE[6:]}", every=3), id="six-and-five-escaped"),
        pytest.param(f"{EXAMPLE[:6]}\\u002D{EXAMPLE[6:]}", id="dash-escaped-in-capitals"),
        pytest.param(json_escaped("0" + EXAMPLE), id="inside-a-longer-run"),
    ],
)
def test_redaction_removes_a_patient_id_written_with_json_escapes(written: str) -> None:
    # A JSON reader sees the digits: a rejected payload is kept as the text it came as.
    text = f'{{"patient_id": "{written}", "n": 1}}'
    assert EXAMPLE in json.loads(text)["patient_id"].replace(" ", "").replace("-", "")

    assert redact_patient_ids(text) == '{"patient_id": "[redacted]", "n": 1}'


def test_redaction_leaves_other_escapes_and_short_escaped_numbers_alone() -> None:
    text = '{"note": "\\u00e6rlig \\u0031\\u0032", "path": "C:\\\\u0033"}'

    assert redact_patient_ids(text) == text


@pytest.mark.parametrize(
    "written",
    [
        pytest.param("".join(chr(0xFF10 + int(d)) for d in EXAMPLE), id="fullwidth"),
        pytest.param("".join(chr(0x0660 + int(d)) for d in EXAMPLE), id="arabic-indic"),
        pytest.param(EXAMPLE[:4] + "".join(chr(0xFF10 + int(d)) for d in EXAMPLE[4:]), id="mixed"),
        pytest.param(
            "".join(chr(0xFF10 + int(d)) for d in f"{EXAMPLE[:6]}") + f" {EXAMPLE[6:]}", id="six-and-five"
        ),
    ],
)
def test_redaction_removes_a_patient_id_written_in_other_decimal_digits(written: str) -> None:
    # Refused as an invalid patient id, the payload is kept: a reader sees the number all the same.
    assert redact_patient_ids(f'{{"patient_id": "{written}"}}') == '{"patient_id": "[redacted]"}'


def test_redaction_leaves_organisation_and_municipality_numbers_alone() -> None:
    text = "trust 983974724 municipality 4601 month 2024-03 amount 1200000"

    assert redact_patient_ids(text) == text


def test_find_patient_ids_finds_the_valid_ones_inside_text_in_order() -> None:
    invalid = wrong_digit(EXAMPLE, 9)
    text = f"first {D_NUMBER}, then nothing {invalid}, then {EXAMPLE}!trust=983974724"

    assert find_patient_ids(text) == [D_NUMBER, EXAMPLE]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f"EP-{EXAMPLE}01", id="followed-by-a-sequence-number"),
        pytest.param(f"EP-0{EXAMPLE}", id="after-a-digit"),
        pytest.param(f"99{EXAMPLE}1234", id="in-the-middle"),
    ],
)
def test_find_patient_ids_finds_one_inside_a_longer_run_of_digits(text: str) -> None:
    # An id made of the patient's number and a sequence number holds the number all the same.
    assert EXAMPLE in find_patient_ids(text)


def test_find_patient_ids_finds_nothing_in_text_without_them() -> None:
    assert find_patient_ids("episode 42 for 4601 at 983974724 on 2024-03-01") == []


# ---------------------------------------------------------------- against the rule itself

ELEVEN_DIGITS = st.text(alphabet="0123456789", min_size=11, max_size=11)


MADE_VALID = (
    st.text(alphabet="0123456789", min_size=9, max_size=9).map(with_patient_check_digits).filter(bool)
)


@given(st.one_of(ELEVEN_DIGITS, MADE_VALID))
def test_a_patient_id_is_valid_exactly_when_the_rule_gives_its_check_digits(value: str) -> None:
    # Half of the examples are made valid by the rule; of the other half, few are.
    assert is_valid_patient_id(value) == (with_patient_check_digits(value[:9]) == value)


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_an_organisation_number_is_valid_exactly_when_the_rule_gives_its_check_digit(value: str) -> None:
    check = check_digit(value[:8], ORG_WEIGHTS)

    assert is_valid_organisation_number(value) == (check is not None and value[8] == str(check))


@pytest.mark.parametrize("separator", list(PATIENT_ID_SEPARATORS))
def test_a_patient_id_written_with_any_separator_is_found_and_redacted(separator: str) -> None:
    written = f"{EXAMPLE[:6]}{separator}{EXAMPLE[6:]}"
    escaped = f"{EXAMPLE[:6]}\\u{ord(separator):04x}{EXAMPLE[6:]}"  # as JSON text may carry it
    shouted = f"{EXAMPLE[:6]}\\u{ord(separator):04X}{EXAMPLE[6:]}"

    assert find_patient_ids(f"EP{separator}{written}") == [EXAMPLE]
    for text in (written, escaped, shouted):
        assert redact_patient_ids(f"note: {text}.") == "note: [redacted].", text


@pytest.mark.parametrize(
    "written",
    [
        pytest.param("3.1129956715e10", id="one-digit-before-the-point"),
        pytest.param("3.1129956715E+10", id="capital-and-sign"),
        pytest.param("311299.56715e5", id="six-and-five-digits-around-the-point"),
        pytest.param("3112995671.5e1", id="ten-and-one"),
        pytest.param("0.031129956715e12", id="leading-zeros"),
        pytest.param("-3.1129956715e10", id="negative"),
    ],
)
def test_a_patient_id_written_as_a_number_in_exponent_form_is_redacted(written: str) -> None:
    # A JSON reader reads the id's value from it; no run of its digits is 11 long.
    assert f"{float(written.lstrip('-')):.0f}" == EXAMPLE

    redacted = redact_patient_ids(f'{{"patient_id": {written}, "note": "{written}."}}')

    assert not re.search(r"\d", redacted), redacted


@pytest.mark.parametrize("kept", ["1e-3", "2.5e2", "9.99e9", "0e20", "1.2e3x"])
def test_small_numbers_in_exponent_form_and_escapes_like_one_are_kept(kept: str) -> None:
    text = f"weight {kept}, letter \\u1e10"  # the escape of Ḑ, no number 1e10

    assert redact_patient_ids(text) == text


# ---------------------------------------------------------------- UUIDs, zeros and other numbers: worked examples


def kept_as_is(text: str, name: str) -> object:
    return pytest.param(text, text, id=name)


# Each a text and what redaction makes of it. A number in exponent form is an id only as a
# token read as a number (no letter, digit, `_` or `.` glued on its left, no letter or digit
# on its right, no piece of a dashed hex run such as a UUID) whose value is an integer of
# exactly 11 digits that passes the check digits; eleven zeros are no one's id.
REDACTION_WORKED_EXAMPLES = [
    # The audit: a Kafka key and a message of `settlement rejections`, shown with a hole.
    kept_as_is("b815ec41-9631-425a-86b7-a2e68730a4a5", name="uuid-with-2e68730-in-a-hex-run"),
    kept_as_is("no statement 00000000-0000-0000-0000-000000000000", name="nil-uuid"),
    # UUIDs with an `e` between digits, wherever it falls in them.
    kept_as_is("event 0f3a9e12-7c4b-4d1e-9a2b-c3e45f6a7b8d", name="uuid-9e12-after-a-letter"),
    kept_as_is("event 6e10b2c4-8d1f-4a3e-b5c7-9e2d4f6a8b0c", name="uuid-starting-6e10"),
    kept_as_is("event d1e2f3a4-5b6c-4d7e-8f90-1a2b3c4d5e66", name="uuid-ending-5e66"),
    kept_as_is("event 5e3b7c10-1e10-4a2b-9c3d-4e5f6a7b8c9d", name="uuid-part-1e10-between-dashes"),
    # 10007200000 and 31129957770 pass the check digits: as UUID parts they are no numbers.
    kept_as_is(
        "dispute 100072e5-9631-425a-86b7-a2e68730a4a5", name="uuid-first-part-a-valid-id-in-exponent-form"
    ),
    kept_as_is(
        "dispute b815ec41-9631-425a-86b7-3112995777e1", name="uuid-last-part-a-valid-id-in-exponent-form"
    ),
    kept_as_is('{"key": "b815ec41-9631-425a-86b7-a2e68730a4a5", "n": 1}', name="uuid-in-json"),
    # Numbers in exponent form whose value is not a patient id.
    kept_as_is('{"n": 2e68730}', name="2e68730-as-a-json-number"),
    kept_as_is('{"weight": 1.5e3}', name="1.5e3"),
    kept_as_is('{"n": 1.5e10}', name="eleven-digits-failing-the-check-digits"),
    kept_as_is('{"n": 3.1129956716e10}', name="a-mistyped-id-in-exponent-form-fails-the-check-digits"),
    kept_as_is("5e" + "0" * 5000, name="an-exponent-of-5000-zeros"),
    pytest.param("1e" + "9" * 5000, "1e[redacted]", id="an-exponent-of-5000-digits-is-a-run-of-them"),
    # Eleven zeros and more pass the check digits, but are no one's id.
    kept_as_is("run 00000000000 and 000000000000000", name="zeros"),
    kept_as_is("000000-00000, 000000\\u002d00000", name="zeros-six-and-five"),
    kept_as_is("\\u0030" * 11, name="zeros-as-json-escapes"),
    kept_as_is("٠" * 12, name="arabic-indic-zeros"),
    # Still redacted: an id in exponent form, read as a number ...
    pytest.param('{"patient_id": 3.1129956715e10}', '{"patient_id": [redacted]}', id="json-number"),
    pytest.param('{"n": 31129956715e0}', '{"n": [redacted]}', id="eleven-digits-e0"),
    pytest.param('{"n": 3112995671.5e1}', '{"n": [redacted]}', id="ten-and-one-digits"),
    pytest.param('{"n": 311299.56715E+5}', '{"n": [redacted]}', id="six-and-five-digits-capital-e"),
    pytest.param('{"n": 3112995671500e-2}', '{"n": [redacted]}', id="negative-exponent"),
    pytest.param("[-3.1129956715e10,1]", "[-[redacted],1]", id="negative-in-an-array"),
    pytest.param(
        "key b815ec41-9631-425a-86b7-a2e68730a4a5: 3.1129956715e10.",
        "key b815ec41-9631-425a-86b7-a2e68730a4a5: [redacted].",
        id="beside-a-uuid-in-text",
    ),
    # ... and a run of digits with zeros in it that is not only zeros, valid or not.
    pytest.param("run 000000000001.", "run [redacted].", id="zeros-and-a-one"),
    pytest.param(f"x 00000000000{EXAMPLE} y", "x [redacted] y", id="an-id-after-eleven-zeros"),
    pytest.param("000000-00001", "[redacted]", id="six-and-five-not-all-zeros"),
]


@pytest.mark.parametrize(("text", "redacted"), REDACTION_WORKED_EXAMPLES)
def test_redaction_of_uuids_zeros_and_numbers_in_exponent_form(text: str, redacted: str) -> None:
    assert redact_patient_ids(text) == redacted


@pytest.mark.parametrize(
    ("text", "found"),
    [
        pytest.param("no statement 00000000-0000-0000-0000-000000000000", [], id="nil-uuid"),
        pytest.param("00000000000 or 000000-00000", [], id="zeros"),
        pytest.param(f"00000000000{EXAMPLE}", [EXAMPLE], id="an-id-after-eleven-zeros"),
    ],
)
def test_eleven_zeros_are_not_found_as_a_patient_id(text: str, found: list[str]) -> None:
    assert find_patient_ids(text) == found


def test_eleven_zeros_pass_the_check_digits_which_is_why_they_are_excluded_apart() -> None:
    assert is_valid_patient_id("00000000000")  # the contract models' rule, unchanged


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("EP-2025-000123", []),
        ("EP-202510-000123", []),  # 6 and 6: no fødselsnummer's shape
        ("EP-2025100600001", ["2025100600001"]),
        ("EP-20251006-00001/202510:06001", ["202510:06001"]),
        ("EP-31129956715", ["31129956715"]),  # one that passes, and is refused
        ("dips.202510-06001", ["202510-06001"]),
        ("KAD-00000000000", []),  # all zeros: never anyone's id
        ("0b9c4f5e-6a43-4d2e-9d5c-100072596310", ["100072596310"]),  # a UUID whose last part is digits
    ],
)
def test_the_digits_read_as_a_patient_id_are_found_whether_they_pass_or_not(
    text: str, digits: list[str]
) -> None:
    assert digits_read_as_patient_ids(text) == digits
    # What find_patient_ids finds is among them.
    assert all(any(p in re.sub(r"\D", "", d) for d in digits) for p in find_patient_ids(text))
