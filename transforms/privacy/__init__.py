"""Masking and person keys: the one home of how personal data is hidden."""
