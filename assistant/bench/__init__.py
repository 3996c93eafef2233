"""The performance benchmark: `assistant bench` or `python -m assistant.bench` (see README)."""
