"""`settlement check`: messages validated offline as intake would, with its reason codes,
and never a patient identifier in what is printed."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from contracts.v1 import topics
from contracts.v1.examples import EXAMPLES
from services.cli import main

PATIENT = "31129956715"
# The contract's own example, noticed late in the evening (Oslo's next day) and naming
# Bergen's number before the merger of 2020.
DECLARED = EXAMPLES[topics.DISCHARGE_READY]["declared_ready"] | {
    "occurred_at": "2025-10-02T23:30:00Z",
    "registered_municipality": "1201",
}


def _check(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main.app, ["check", *args], input=stdin, env={"COLUMNS": "300"})
    return result.exit_code, result.output


def test_a_good_message_is_accepted_with_its_oslo_day_and_mapped_numbers(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(DECLARED))

    code, out = _check(topics.DISCHARGE_READY, str(good))

    assert code == 0, out
    assert "accepted: declared_ready of EP-2025-000123, Oslo day 2025-10-03" in out
    assert "registered_municipality 1201 is retired: settled on 4601" in out
    assert "1 accepted, 0 rejected" in out
    assert PATIENT not in out


def test_each_bad_line_gets_intakes_reason_and_the_exit_code_says_so(tmp_path: Path) -> None:
    messages = tmp_path / "batch.jsonl"
    messages.write_text(
        "\n".join(
            [
                json.dumps(DECLARED),
                json.dumps(DECLARED | {"patient_id": "31129956716"}),  # a check digit wrong
                json.dumps(DECLARED | {"episode_id": f"EP-{PATIENT}"}),
                "not json",
                json.dumps(DECLARED | {"type": "discharged"}) + "  ",
            ]
        )
    )

    code, out = _check(topics.DISCHARGE_READY, "--lines", str(messages))

    assert code == 1
    said = {
        line.split(": ")[0].rsplit(":", 1)[-1]: line for line in out.splitlines() if "batch.jsonl:" in line
    }
    assert "accepted: declared_ready of EP-2025-000123" in said["1"]
    assert "rejected: invalid_patient_id" in said["2"]
    assert "rejected: patient_id_in_subject_id" in said["3"]
    assert "rejected: not_json" in said["4"]
    assert "rejected: schema_violation" in said["5"]  # a discharge names its destination
    assert "1 accepted, 4 rejected" in out
    assert PATIENT not in out


def test_messages_for_another_topic_are_told_so(tmp_path: Path) -> None:
    code, out = _check(topics.ACTIVITY, "-", stdin=json.dumps(DECLARED))

    assert code == 1
    assert "stdin: rejected: wrong_topic" in out


def test_a_topic_that_takes_no_events_and_a_missing_file_are_refused(tmp_path: Path) -> None:
    assert _check("samhandling.settlements.v1", "-", stdin="{}")[0] == 2
    code, out = _check(topics.ACTIVITY, str(tmp_path / "missing.json"))
    assert code == 2
    assert "cannot read" in out


def test_the_registry_the_services_use_is_the_one_checked_against(tmp_path: Path) -> None:
    registry = tmp_path / "registry.csv"
    registry.write_text("number,name,valid_from,valid_until,successors\n4601,Bergen,2020-01-01,,\n")
    message = tmp_path / "m.json"
    message.write_text(json.dumps(DECLARED | {"registered_municipality": "4601"}))

    assert _check(topics.DISCHARGE_READY, str(message), "--registry", str(registry))[0] == 0
    code, out = _check(topics.DISCHARGE_READY, str(message))  # the shipped one: 1201 became 4601
    assert code == 0, out
    code, out = _check(topics.DISCHARGE_READY, str(message), "--registry", str(tmp_path / "none.csv"))
    assert code == 2


def test_a_number_the_registry_does_not_know_is_rejected_as_intake_would(tmp_path: Path) -> None:
    registry = tmp_path / "registry.csv"
    registry.write_text("number,name,valid_from,valid_until,successors\n4601,Bergen,2020-01-01,,\n")
    message = tmp_path / "m.json"
    message.write_text(
        json.dumps(DECLARED | {"registered_municipality": "4601", "staying_municipality": "4624"})
    )

    code, out = _check(topics.DISCHARGE_READY, str(message), "--registry", str(registry))

    assert code == 1
    assert "rejected: unknown_municipality_number: staying_municipality" in out


# A correction sent in January 2024 of an activity that ended in December 2023, when 1507
# was still Ålesund's number (it was split on 2024-01-01 into 1508 Ålesund and 1580 Haram).
LATE_CORRECTION = EXAMPLES[topics.ACTIVITY]["activity_corrected"] | {
    "occurred_at": "2024-01-03T10:00:00+01:00",
    "started_at": "2023-12-18T08:00:00+01:00",
    "ended_at": "2023-12-20T12:00:00+01:00",
}


def test_an_activitys_number_is_checked_on_the_activitys_day(tmp_path: Path) -> None:
    messages = tmp_path / "corrections.jsonl"
    messages.write_text(
        "\n".join(
            json.dumps(LATE_CORRECTION | {"registered_municipality": number}) for number in ("1507", "1508")
        )
    )

    code, out = _check(topics.ACTIVITY, "--lines", str(messages))

    assert code == 1
    said = {line.split(": ")[0].rsplit(":", 1)[-1]: line for line in out.splitlines() if "jsonl:" in line}
    assert "accepted: activity_corrected of ACT-2025-000678" in said["1"]
    assert "retired" not in said["1"]
    assert "rejected: unknown_municipality_number: registered_municipality" in said["2"]
    assert "not in force on 2023-12-20" in said["2"]


def test_an_activity_is_shown_with_its_own_day_not_the_day_it_was_sent(tmp_path: Path) -> None:
    messages = tmp_path / "activity.jsonl"
    messages.write_text(
        "\n".join(
            json.dumps(EXAMPLES[topics.ACTIVITY][kind] | {"occurred_at": "2025-10-09T23:30:00Z"})
            for kind in ("activity_recorded", "activity_corrected", "activity_cancelled")
        )
    )

    code, out = _check(topics.ACTIVITY, "--lines", str(messages))

    assert code == 0, out
    said = {line.split(": ")[0].rsplit(":", 1)[-1]: line for line in out.splitlines() if "jsonl:" in line}
    # Ended 2025-10-05 12:00 in Oslo; sent late on the 9th, which is the 10th in Oslo.
    assert (
        "accepted: activity_recorded of ACT-2025-000678, activity day 2025-10-05 (Oslo day of ended_at)"
        in said["1"]
    )
    assert "activity_corrected of ACT-2025-000678, activity day 2025-10-05" in said["2"]
    assert "activity_cancelled of ACT-2025-000678, Oslo day 2025-10-10 of occurred_at" in said["3"]
    assert "2025-10-10" not in said["1"] + said["2"]


def test_an_accepted_id_with_eleven_digits_in_a_row_is_warned_of_and_the_exit_code_stays(
    tmp_path: Path,
) -> None:
    messages = tmp_path / "ids.jsonl"
    messages.write_text(
        "\n".join(
            [
                json.dumps(DECLARED | {"episode_id": "EP-2025100600001"}),
                json.dumps(DECLARED | {"source": "dips.202510-06001"}),
                json.dumps(DECLARED),
            ]
        )
    )

    code, out = _check(topics.DISCHARGE_READY, "--lines", str(messages))

    assert code == 0, out
    lines = out.splitlines()
    # Each warning on the line after the message it is about.
    first, second, third = (n for n, line in enumerate(lines) if "ids.jsonl:" in line)
    assert lines[first + 1].startswith("  warning: episode_id holds 13 digits in a row (2025100600001).")
    assert "patient_id_in_subject_id" in lines[first + 1]
    assert "Do not put 11 or more digits in a row in an id." in lines[first + 1]
    assert lines[second + 1].startswith(
        "  warning: source holds 6 and 5 digits with '-' between (202510-06001)"
    )
    assert not lines[third + 1].startswith("  warning")
    assert "3 accepted, 0 rejected; 2 with a warning" in out


def test_ids_of_one_scheme_are_refused_now_and_then_and_the_others_are_warned_of(tmp_path: Path) -> None:
    # The audit's scheme: EP-, the day, a five-digit number. Tried on a few samples, it
    # passed; in production about 1 id in 40 is refused (13 digits in a row: 3 chances).
    messages = tmp_path / "scheme.jsonl"
    messages.write_text(
        "\n".join(json.dumps(DECLARED | {"episode_id": f"EP-20251006{n:05d}"}) for n in range(200))
    )

    code, out = _check(topics.DISCHARGE_READY, "--lines", str(messages))

    assert code == 1
    results = [line for line in out.splitlines() if "scheme.jsonl:" in line]
    refused = [line for line in results if "rejected: patient_id_in_subject_id" in line]
    assert 0 < len(refused) < 20
    assert (
        f"{200 - len(refused)} accepted, {len(refused)} rejected; {200 - len(refused)} with a warning" in out
    )
