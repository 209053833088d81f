"""A simulated hospital system: realistic, deterministic event streams for the demo,
the tests and the benchmark."""
