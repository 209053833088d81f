"""Intake and rating: validate, pseudonymise, record once, price."""
