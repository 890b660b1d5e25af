"""Run keys, step records and the run's private work folder."""
