"""mlreg.serving."""
