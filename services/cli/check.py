"""`settlement check`: a hospital integration team's messages, validated as intake would
validate them, before anything is sent: the same code, the same reason codes.

Offline: nothing is stored or published, so what needs the ledger cannot be told here (a
`duplicate_conflict`, an event id sent before with other content). The patient id is
checked and then dropped; only redacted text is printed."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from contracts.v1.identifiers import digits_read_as_patient_ids
from services.domain.calendar import oslo_day
from services.domain.municipalities import Registry
from services.intake.pseudonym import Pseudonymiser
from services.intake.validation import SUBJECT_FIELD, Accepted, RawRecord, validate


@dataclass(frozen=True, slots=True)
class Checked:
    name: str  # where the message came from: a file, a line of one
    accepted: bool
    says: str  # what intake would make of it, redacted
    # What is accepted but may not be next time: said, and no reason to refuse the message.
    warnings: tuple[str, ...] = ()


def check_messages(
    topic: str, messages: Iterable[tuple[str, bytes]], registry: Registry, now: datetime
) -> list[Checked]:
    # A key of the moment: the pseudonyms made here are thrown away with it.
    pseudonymise = Pseudonymiser(secrets.token_bytes(32))
    out = []
    for offset, (name, raw) in enumerate(messages):
        record = RawRecord(topic, 0, offset, None, raw)
        outcome = validate(record, now=now, pseudonymise=pseudonymise, registry=registry)
        if isinstance(outcome, Accepted):
            mapped = outcome.payload.get("municipality_mappings") or {}
            says = "".join(
                [
                    f"accepted: {outcome.type} of {outcome.subject_id}, {_day_of(outcome)}",
                    *(
                        f"; {field} {old} is retired: settled on {outcome.payload[field]}"
                        for field, old in sorted(mapped.items())
                    ),
                ]
            )
            out.append(Checked(name, True, says, _id_warnings(outcome)))
        else:
            out.append(
                Checked(name, False, f"rejected: {outcome.reason.value}: {outcome.redacted_message()}")
            )
    return out


def _day_of(event: Accepted) -> str:
    """The day the rules read the event on: an activity's is the Oslo day it ended, whenever
    the event was sent; a cancellation names none."""
    ended_at = event.payload.get("ended_at")
    if ended_at is not None:
        return f"activity day {oslo_day(datetime.fromisoformat(ended_at))} (Oslo day of ended_at)"
    if event.family == "activity":
        return f"Oslo day {oslo_day(event.occurred_at)} of occurred_at (a cancellation names no activity day)"
    return f"Oslo day {oslo_day(event.occurred_at)}"


def _id_warnings(event: Accepted) -> tuple[str, ...]:
    """Intake refuses an id whose digits pass a fødselsnummer's check digits
    (`patient_id_in_subject_id`): ids of a scheme with 11 digits in a row do now and then,
    by chance, so a scheme tried on samples fails in production. Said of every accepted id
    that holds such digits: they did not pass this time."""
    warnings = []
    for field, value in ((SUBJECT_FIELD[event.family], event.subject_id), ("source", event.source)):
        for digits in digits_read_as_patient_ids(value):
            if digits.isdigit():
                chances = len(digits) - 10
                holds = f"{len(digits)} digits in a row ({digits})"
                odds = f"for each 11 in a row (here {chances})" if chances > 1 else "by chance"
                advice = "Do not put 11 or more digits in a row in an id."
            else:
                holds = f"6 and 5 digits with {digits[6]!r} between ({digits}), as a fødselsnummer is often written"
                odds = "by chance"
                advice = "Do not put 6 and 5 digits with a separator between in an id."
            warnings.append(
                f"{field} holds {holds}. Intake refuses an id (patient_id_in_subject_id) whenever such "
                f"digits pass a fødselsnummer's or D-number's check digits: these do not, but about 1 id "
                f"in 121 does {odds}, so ids of this scheme will be refused now and then. {advice}"
            )
    return tuple(warnings)
