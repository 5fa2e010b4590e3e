"""mlreg.builder."""
