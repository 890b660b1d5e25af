"""A county's datasets parsed and validated side by side, in worker processes of the task.

The datasets of a day are independent until households are resolved, and parsing and GX are
plain Python: one process keeps one core busy. Airflow 3.3 cannot map a task again inside the
mapped county group ("operator expansion in an expanded task group is not yet supported"), so
the parse_validate task fans out itself, over `workers` processes forked from it.

Forked after Great Expectations and the pipeline are imported, a worker starts in milliseconds
and shares those pages with the task. Each worker opens its own warehouse connections (the task
closes its pooled ones first, so none is shared), and runs `parse_and_validate` for one dataset
at a time, with its own ephemeral GX context. Its log lines travel back with its result and the
task writes them, so that one process alone writes the task's log. The results come back in the
groups' order. A dataset whose worker dies (killed, out of memory) is logged and its files are
left 'received' for the next run, as a dataset that fails in the task itself.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.settings import Settings
from transforms.runlog.refs import DatasetGroup, ParsedFileRef
from transforms.runlog.steps import describe_failure
from transforms.warehouse.tables import file_manifest

log = logging.getLogger(__name__)

_LogLine = tuple[str, int, str]  # logger name, level, message
# a worker's state, set once when it starts (inherited through the fork, never pickled)
_worker: dict[str, object] = {}
_lines: list[_LogLine] = []


class _Collector(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        _lines.append((record.name, record.levelno, record.getMessage()))


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


def _worker_start(settings: Settings, run_id: str) -> None:
    """Keep the worker's log lines for the task instead of writing to the task's log."""
    loggers = [logging.getLogger()]
    loggers += [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
    logging.getLogger().addHandler(_Collector())
    _worker.update(settings=settings, run_id=run_id)


def _parse_group(group: DatasetGroup) -> tuple[list[ParsedFileRef], list[_LogLine]]:
    from transforms.pipeline.steps import parse_and_validate
    from transforms.warehouse.tables import make_engine

    settings = _worker["settings"]
    run_id = _worker["run_id"]
    assert isinstance(settings, Settings) and isinstance(run_id, str)
    _lines.clear()
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
    return refs, list(_lines)


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
    results: list[ParsedFileRef] = []
    # Objects frozen before the fork are never collected in a worker, so no finaliser of the
    # task's garbage (a dropped connection, say) runs there.
    gc.freeze()
    try:
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_worker_start,
            initargs=(settings, run_id),
        ) as pool:
            submitted: dict[int, Future[tuple[list[ParsedFileRef], list[_LogLine]]]] = {}
            for position in order:
                submitted[position] = pool.submit(_parse_group, groups[position])
            gc.unfreeze()  # the workers are forked by the first submit
            futures = [submitted[position] for position in range(len(groups))]
            for group, future in zip(groups, futures, strict=True):
                try:
                    refs, lines = future.result()
                except Exception as exc:  # the worker died, or its result could not come back
                    log.error(
                        "dataset %s failed; its files are left for the next run: %s",
                        group["dataset"],
                        describe_failure(exc),
                    )
                    continue
                for name, level, text in lines:
                    logging.getLogger(name).log(level, "%s", text)
                results += refs
    finally:
        gc.unfreeze()
    return results
