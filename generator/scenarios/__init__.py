"""Risk warnings in the sample county: their ground truth, planted cases and later days.

- The ground truth of the warning rules (rules/warning_rules.yaml), computed here again from
  the generator's clean values, without pipeline code: `warnings.csv` (every household x rule
  open or resolved on each generated day, and whether it is new, still open, resolved or
  reopened) and `candidates.csv` (people with a risk signal who are not on the roster). Numbers
  such as thresholds and windows are read from the rules file and reference/parameters.yaml;
  what each rule means is written out again in its family's module, so a rule file that says
  something else than intended shows up as a disagreement.
- Planted cases (``risk_scenarios``): households and outsiders made for every rule, each with a
  near miss on its threshold (an out-of-pocket total of 4,999.99 against 5,000.00, an income on
  the line, a child who turns 17 tomorrow, ...), listed in `risk_scenarios.csv`.
- Later days (``days`` > 1): the bureaus' corrected full exports for the next days, written to
  DATA_DIR/drops/<day>/<bureau>/ (`python -m generator --data-dir DIR --deliver DAY` drops them
  into landing/ before that day's run), with changes that make warnings resolve, reopen and
  appear.

How the pipeline reads several files is part of the truth: a later file of a dataset replaces
the earlier one of the same period (the roster's income year, else the month); within the
current files a person's rows come from the latest file mentioning them; the roster gives each
household the figures of its latest income year (the householder's row, else the first).

rules.py reads the rules file; dayview.py is what the pipeline holds on a day; evaluation.py
the day's evaluation every family adds to; plan.py the planted households and their later
changes; one module per rule family (income, medical, education, housing, assistance,
employment, disability) says what its rules mean and plants their cases; families.py lists
them; lifecycle.py writes the later days and the warnings' truth.
"""
