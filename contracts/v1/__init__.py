"""Version 1 of the settlement wire contract."""
