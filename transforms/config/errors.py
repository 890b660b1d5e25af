"""Failures a retry cannot fix. The DAG fails such a task at once instead of retrying it with
backoff (a missing secret stays missing for the next nine minutes too)."""

from __future__ import annotations


class PermanentError(Exception):
    """Raised for a condition only a person can change: configuration, a wrong secret, files
    the run could not finish (their errors are in the log and in run_step)."""
