"""Keyed pseudonyms for patient identifiers.

HMAC-SHA256 with a secret key: the same patient gets the same pseudonym (so episodes can
be linked), and without the key nobody can recover the 11 digits by trying them all, which
a plain hash of a fødselsnummer would allow in minutes.
"""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "p1:"


class Pseudonymiser:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the pseudonym key must be at least 32 bytes")
        self._key = key

    def __call__(self, patient_id: str) -> str:
        # hmac.digest is the one-shot C path: a third of the cost of an hmac.new object.
        return PREFIX + hmac.digest(self._key, patient_id.encode("ascii"), hashlib.sha256).hex()[:32]

    def __repr__(self) -> str:
        return "Pseudonymiser(key=***)"
