"""SOAR: versioned playbooks whose steps call real APIs, with human approval and
durable executions that survive a crash (see docs/soar.md)."""
