"""A county's datasets parsed and validated side by side, in worker processes of the task.

The datasets of a day are independent until households are resolved, and parsing and GX are
plain Python: one process keeps one core busy. Airflow 3.3 cannot map a task again inside the
mapped county group ("operator expansion in an expanded task group is not yet supported"), so
the parse_validate task fans out itself, over `workers` processes forked from it
(transforms.runlog.forked).

Forked after Great Expectations and the pipeline are imported, a worker starts in milliseconds
and shares those pages with the task. Each worker opens its own warehouse connections (the task
closes its pooled ones first, so none is shared), and runs `parse_and_validate` for one dataset
at a time, with its own ephemeral GX context. Its log lines travel back with its result and the
task writes them, so that one process alone writes the task's log. The results come back in the
groups' order. A dataset whose worker dies (killed, out of memory) is logged and its files are
left 'received' for the next run, as a dataset that fails in the task itself.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.settings import Settings
from transforms.runlog.forked import side_by_side
from transforms.runlog.refs import DatasetGroup, ParsedFileRef
from transforms.runlog.steps import describe_failure
from transforms.warehouse.tables import file_manifest

log = logging.getLogger(__name__)

# A workbook's bytes are zipped XML: each costs several times a CSV byte to read and parse.
_WORKBOOK_WEIGHT = 3
_WORKBOOKS = (".xlsx", ".xlsm", ".xls")


def largest_first(engine: Engine, groups: Sequence[DatasetGroup]) -> list[int]:
    """The groups' positions, the most work first: the day lasts as long as its largest
    dataset takes once it starts, so it starts first and the small ones fill in beside it."""
    ids = [i for g in groups for i in g["manifest_ids"]]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                file_manifest.c.id, file_manifest.c.file_name, file_manifest.c.size_bytes
            ).where(file_manifest.c.id.in_(ids))
        ).all()
    work = {
        row.id: row.size_bytes
        * (_WORKBOOK_WEIGHT if row.file_name.lower().endswith(_WORKBOOKS) else 1)
        for row in rows
    }
    sizes = [sum(work.get(i, 0) for i in g["manifest_ids"]) for g in groups]
    return sorted(range(len(groups)), key=lambda n: -sizes[n])


def _parse_group(settings: Settings, run_id: str, group: DatasetGroup) -> list[ParsedFileRef]:
    from transforms.pipeline.steps import parse_and_validate
    from transforms.warehouse.tables import make_engine

    engine = make_engine(settings.warehouse_url)
    try:
        refs = parse_and_validate(settings, engine, run_id, group["dataset"], group["manifest_ids"])
    except Exception as exc:
        log.error(
            "dataset %s failed; its files are left for the next run: %s",
            group["dataset"],
            describe_failure(exc),
        )
        refs = []
    finally:
        engine.dispose()
    return refs


def parse_side_by_side(
    settings: Settings, engine: Engine, run_id: str, groups: list[DatasetGroup], workers: int
) -> list[ParsedFileRef]:
    """`parse_and_validate` of every group, `workers` at a time; the results in group order."""
    # imported here, once, so that every worker inherits them instead of importing them itself
    import great_expectations  # noqa: F401

    import transforms.outputs.data_docs
    import transforms.outputs.report_masking
    import transforms.validation.validate  # noqa: F401

    workers = min(workers, len(groups))
    log.info("%d datasets, %d side by side", len(groups), workers)
    order = largest_first(engine, groups)
    engine.dispose()  # no pooled connection of the task may be used by a worker too
    work = functools.partial(_parse_group, settings, run_id)
    results: list[ParsedFileRef] = []
    for group, outcome in zip(groups, side_by_side(work, groups, workers, order), strict=True):
        if isinstance(outcome, BaseException):  # the worker died, or its result could not come back
            log.error(
                "dataset %s failed; its files are left for the next run: %s",
                group["dataset"],
                describe_failure(outcome),
            )
            continue
        results += outcome
    return results
