"""Each bureau's clean rows (bureaus.py), and the defects and quirks planted in them."""
