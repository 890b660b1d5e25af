"""Each bureau's rows: the clean datasets, the roster as the national system exports it, 残联."""
