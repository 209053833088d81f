"""The benchmark: pipeline throughput and latency against the raw broker and database."""
