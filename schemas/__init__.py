"""JSON Schemas shipped with mlreg (read with importlib.resources)."""
