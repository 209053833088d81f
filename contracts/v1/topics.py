"""Topic names of the v1 contract. Hospital systems publish to the inbound ones."""

from typing import Final

DISCHARGE_READY: Final = "samhandling.discharge-ready.v1"
EMERGENCY_BEDS: Final = "samhandling.emergency-beds.v1"
ACTIVITY: Final = "samhandling.activity.v1"
SETTLEMENTS: Final = "samhandling.settlements.v1"
REJECTED: Final = "samhandling.rejected.v1"
COMMANDS: Final = "samhandling.commands.v1"

INBOUND: Final = (DISCHARGE_READY, EMERGENCY_BEDS, ACTIVITY)
ALL: Final = (*INBOUND, SETTLEMENTS, REJECTED, COMMANDS)
