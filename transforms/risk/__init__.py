"""Warning rules, their inputs, incomes, indicators, the warning lifecycle."""
