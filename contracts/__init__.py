"""The wire contract hospital integration teams and municipal finance code against.

Versioned by package (`contracts.v1`); a breaking change is a new package and new topics.
"""
