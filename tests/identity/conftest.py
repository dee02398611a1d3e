"""Identity tests: a runtime over a fresh data dir."""
