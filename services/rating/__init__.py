"""Re-rating: from the stored facts of a subject to its ledger items. Shared by intake (on
every new fact) and settlement (to complete a month before it is closed)."""
