"""The county's people: names, ID numbers, households, and the reference data they come from."""
