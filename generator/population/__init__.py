"""Who lives in the sample county: reference data, households and people, names and ID numbers."""
