"""One router per resource: ``data`` (GET /data) and ``meta`` (/variables, /health)."""
