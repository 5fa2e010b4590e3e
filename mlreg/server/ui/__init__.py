"""The web UI of `mlreg server`: pages and forms over the same services as the API."""
