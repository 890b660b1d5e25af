"""What a run did: its key on disk and a record of every step's outcome in `run_step`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.clock import utc_now
from transforms.privacy.masking import describe_error
from transforms.warehouse.tables import run_step


def run_key(run_id: str) -> str:
    """A file-system-safe folder name for a run id such as 'manual__2026-11-28T00:00:00+00:00'."""
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", run_id)


def describe_failure(exc: BaseException) -> str:
    """What may be stored or logged about a failure (auditors read run_step): never the raw
    text of a database error, whose DETAIL can quote a row's ID or name."""
    return describe_error(exc)[:2000]


class DatabaseStepError(RuntimeError):
    """A database error, told without the values it would quote (the original is not chained:
    Airflow's log would print its text)."""


@contextmanager
def recorded_step(
    engine: Engine, run_id: str, step: str, dataset: str | None = None
) -> Iterator[dict[str, Any]]:
    """Record a step's outcome (counts, status, message) whether it succeeds or fails."""
    started = utc_now()
    counts: dict[str, Any] = {}
    status, message = "success", None
    try:
        yield counts
    except sa.exc.SQLAlchemyError as exc:
        status, message = "failed", describe_failure(exc)
        raise DatabaseStepError(f"step {step} failed: {message}") from None
    except Exception as exc:
        status, message = "failed", describe_failure(exc)
        raise
    finally:
        with engine.begin() as conn:
            conn.execute(
                run_step.insert().values(
                    run_id=run_id,
                    step=step,
                    dataset=dataset,
                    status=status,
                    counts=counts,
                    message=message,
                    started_at=started,
                    finished_at=utc_now(),
                )
            )
