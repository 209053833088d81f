"""The settlement services: intake and rating, settlement, and the runtime that hosts them."""
