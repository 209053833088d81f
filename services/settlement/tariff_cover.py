"""What the settlement service says at start-up about the national rates its tariff book
lacks: a year's rate nobody added holds every discharge-ready day of that year as unrated,
shown on the statements but billed to nobody, and nothing else would say so (the shipped
book ends with 2025, on purpose: docs/domain.md section 1)."""

from __future__ import annotations

from datetime import date, timedelta

from services.domain.tariffs import (
    CATEGORY_OF_PARAMETER,
    NATIONAL_RATES_REQUIRED,
    TariffBook,
    national_cover,
)

# How long before a national rate ends the start-up says to add the next one: a month
# covers the state budget's rates, published in the autumn, and a restart in December.
WARN_WITHIN_DAYS = 31
HOW_TO_ADD = "docs/tariffs.md, 'Adding next year's rate'"


def cover_warnings(book: TariffBook, day: date) -> list[str]:
    """One line for each national rate the law requires that `book` lacks on `day`, or that
    ends within WARN_WITHIN_DAYS of it."""
    lines = []
    for parameter in NATIONAL_RATES_REQUIRED:
        cover = national_cover(book, parameter, day)
        what = CATEGORY_OF_PARAMETER[parameter].value.replace("_", " ")
        if cover.missing_since is not None:
            lines.append(
                f"no national {parameter.value} in force today ({day}), none since {cover.missing_since}: "
                f"{what} from then on wait as unrated, on the statements and billed to nobody, until "
                f"the rate is added ({HOW_TO_ADD}); the next close prices them"
            )
        elif cover.ends is not None and cover.days_left <= WARN_WITHIN_DAYS:
            lines.append(
                f"the national {parameter.value} ends after {cover.ends - timedelta(days=1)}: {what} "
                f"from {cover.ends} on will wait as unrated until the next rate is added ({HOW_TO_ADD})"
            )
    return lines
