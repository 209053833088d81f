"""Adapters to PostgreSQL and Kafka. The domain never imports from here."""
