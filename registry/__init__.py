"""mlreg.registry."""
