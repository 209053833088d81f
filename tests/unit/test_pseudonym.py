"""The pseudonym is HMAC-SHA256 (RFC 2104) of the patient id under the key, truncated: the
hand-rolled inner/outer states must give exactly what the standard library gives, or every
patient's episodes would stop linking to their earlier ones after an upgrade."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from services.intake.pseudonym import PREFIX, Pseudonymiser

PATIENT_IDS = ("31129956715", "01094026101", "41129956712", "00000000000")


@pytest.mark.parametrize("key", [b"k" * 32, bytes(range(40)), b"\xff" * 64, b"x" * 65, bytes(range(256)) * 2])
@pytest.mark.parametrize("patient_id", PATIENT_IDS)
def test_the_pseudonym_is_the_standard_hmac_sha256(key: bytes, patient_id: str) -> None:
    expected = PREFIX + hmac.new(key, patient_id.encode("ascii"), hashlib.sha256).hexdigest()[:32]
    assert Pseudonymiser(key)(patient_id) == expected


def test_a_short_key_is_refused_and_the_key_never_shows() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Pseudonymiser(b"short")
    assert "k" * 32 not in repr(Pseudonymiser(b"k" * 32))


def test_the_same_patient_gets_the_same_pseudonym_and_another_key_another() -> None:
    one, other = Pseudonymiser(b"a" * 32), Pseudonymiser(b"b" * 32)
    assert one("31129956715") == one("31129956715") != other("31129956715")
    assert one("31129956715") != one("01094026101")
