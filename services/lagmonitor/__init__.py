"""The lag monitor: consumer lag in messages and seconds, and Burrow-style statuses."""
