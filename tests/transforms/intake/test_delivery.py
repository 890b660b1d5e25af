"""The delivery calendar: due dates, on time, late, overdue, never; what counts as delivered."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pydantic
import pytest
import sqlalchemy as sa

from transforms.config.contracts import Contract, Delivery, contract_by_dataset
from transforms.intake.delivery import delivery_statuses, due_dates_around, judge, on_time_rate
from transforms.warehouse.tables import create_schema, file_manifest, make_engine

D = dt.date


def _contract(dataset: str, **delivery: Any) -> Contract:
    return contract_by_dataset(dataset).model_copy(update={"delivery": Delivery(**delivery)})


@pytest.mark.parametrize(
    ("delivery", "day", "expected"),
    [
        ({}, D(2026, 12, 5), (D(2026, 10, 10), D(2026, 11, 10), D(2026, 12, 10))),
        ({}, D(2026, 12, 10), (D(2026, 11, 10), D(2026, 12, 10), D(2027, 1, 10))),
        ({"due_day": 5}, D(2027, 1, 4), (D(2026, 11, 5), D(2026, 12, 5), D(2027, 1, 5))),
        ({"months": [3, 9]}, D(2026, 12, 1), (D(2026, 3, 10), D(2026, 9, 10), D(2027, 3, 10))),
        ({"months": [9, 3]}, D(2026, 3, 10), (D(2025, 9, 10), D(2026, 3, 10), D(2026, 9, 10))),
    ],
)
def test_due_dates_around_a_day(
    delivery: dict[str, Any], day: dt.date, expected: tuple[dt.date, ...]
) -> None:
    assert due_dates_around(Delivery(**delivery), day) == expected


def test_the_states_of_a_monthly_dataset() -> None:
    illness = _contract("illness")  # monthly by the 10th
    day = D(2026, 12, 20)  # latest due 12-10, its window (11-10, 12-10]
    on_time = judge(illness, [D(2026, 11, 3), D(2026, 12, 9)], day)
    assert (on_time.state, on_time.days_late, on_time.stale) == ("on_time", 0, False)
    assert on_time.last_delivered == D(2026, 12, 9)
    late = judge(illness, [D(2026, 10, 3), D(2026, 12, 14)], day)
    assert (late.state, late.days_late, late.stale) == ("late", 4, False)
    # the first delivery ever, after the due date: nothing before it to judge
    first = judge(illness, [D(2026, 12, 14)], day)
    assert (first.state, first.days_late) == ("on_time", 0)
    assert "逾期4天后已报送" in late.describe_zh()
    overdue = judge(illness, [D(2026, 11, 3)], day)
    assert (overdue.state, overdue.days_late, overdue.stale) == ("overdue", 10, True)
    assert (
        overdue.describe_zh()
        == (
            "卫健局《大病及慢病患者名单》应于2026-12-10前报送，逾期未报10天，最近一次报送为2026-11-03"
        )
        or "逾期未报10天" in overdue.describe_zh()
    )
    assert overdue.stale_note_zh() is not None
    assert overdue.stale_note_zh().startswith("数据截至2026-11-03：")  # type: ignore[union-attr]
    never = judge(illness, [], day)
    assert (never.state, never.last_delivered, never.stale) == ("never", None, True)
    assert "从未报送" in never.describe_zh()
    # a delivery on the due date itself is on time; one the day after the previous due is too
    assert judge(illness, [D(2026, 12, 10)], day).state == "on_time"
    assert judge(illness, [D(2026, 11, 11)], day).state == "on_time"
    assert judge(illness, [D(2026, 11, 10)], day).state == "overdue"


def test_nothing_is_overdue_on_the_due_date_itself() -> None:
    illness = _contract("illness")  # monthly by the 10th
    due = D(2026, 12, 10)
    # delivered in the window before: on time until the day is over
    waiting = judge(illness, [D(2026, 11, 9)], due)
    assert (waiting.state, waiting.days_late, waiting.stale) == ("on_time", 0, False)
    assert (waiting.due_date, waiting.next_due_date) == (D(2026, 11, 10), due)
    # the day after, the same history is overdue by one day
    assert judge(illness, [D(2026, 11, 9)], due + dt.timedelta(days=1)).days_late == 1
    # a file on the due date is on time by that due date
    today = judge(illness, [D(2026, 11, 9), due], due)
    assert (today.state, today.due_date) == ("on_time", due)
    # overdue already by the due date before: still overdue, counted from that one
    old = judge(illness, [D(2026, 10, 9)], due)
    assert (old.state, old.days_late, old.due_date) == ("overdue", 30, D(2026, 11, 10))
    assert "逾期未报30天" in old.describe_zh()
    # nothing ever: never, counted from the due date before
    assert (judge(illness, [], due).state, judge(illness, [], due).days_late) == ("never", 30)
    # the same as the generator's independent oracle, on every kind of history
    from generator.population.reference import load_contracts
    from generator.scenarios.deliveries import state_on

    oracle = load_contracts()["illness"]
    for history in ([], [D(2026, 10, 9)], [D(2026, 11, 9)], [D(2026, 11, 9), due], [due]):
        ours, theirs = judge(illness, history, due), state_on(oracle, history, due)
        assert (ours.state, ours.days_late, ours.due_date) == (
            theirs.state,
            theirs.days_late,
            theirs.due_date,
        ), history


def test_a_backfilled_day_ignores_later_deliveries() -> None:
    illness = _contract("illness")
    status = judge(illness, [D(2026, 11, 3), D(2026, 12, 30)], D(2026, 12, 20))
    assert (status.state, status.last_delivered) == ("overdue", D(2026, 11, 3))


def test_students_are_due_per_term() -> None:
    students = contract_by_dataset("students")
    assert students.delivery.cadence_zh == "每年3月、9月10日前"
    # delivered for the autumn term: on time all winter, not chased monthly
    status = judge(students, [D(2026, 9, 2)], D(2027, 2, 27))
    assert (status.state, status.due_date, status.next_due_date) == (
        "on_time",
        D(2026, 9, 10),
        D(2027, 3, 10),
    )
    assert judge(students, [D(2026, 9, 2)], D(2027, 3, 11)).state == "overdue"


@pytest.mark.parametrize(
    "delivery",
    [{"due_day": 31}, {"due_day": 0}, {"months": []}, {"months": [13]}, {"months": [3, 3]}],
)
def test_a_broken_delivery_calendar_is_refused(delivery: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        Delivery(**delivery)


def test_every_contract_has_a_calendar_and_the_roster_is_due_by_the_5th() -> None:
    assert contract_by_dataset("roster").delivery.cadence_zh == "每月5日前"
    assert contract_by_dataset("disabled_persons").delivery == Delivery()  # the default


def test_only_files_that_brought_the_dataset_count(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    create_schema(engine)
    base = {
        "run_id": "r",
        "bureau": "health",
        "dataset": "illness",
        "file_name": "f.xlsx",
        "landing_path": "health/f.xlsx",
        "size_bytes": 1,
        "received_at": dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
    }
    rows = [
        {**base, "status": "loaded", "county_day": D(2026, 11, 2)},
        {**base, "status": "rejected", "county_day": D(2026, 12, 1)},
        {**base, "status": "held", "county_day": D(2026, 12, 2)},
        {**base, "status": "duplicate", "county_day": D(2026, 12, 3)},
        # no county day (a file taken before the column existed): its received time counts
        {
            **base,
            "dataset": "assistance",
            "bureau": "civil_affairs",
            "status": "partly_loaded",
            "county_day": None,
        },
    ]
    with engine.begin() as conn:
        conn.execute(file_manifest.insert(), rows)
    contracts = [contract_by_dataset(d) for d in ("assistance", "illness", "roster")]
    with engine.connect() as conn:
        statuses = {s.dataset: s for s in delivery_statuses(conn, contracts, D(2026, 12, 15))}
        assert conn.execute(sa.select(sa.func.count()).select_from(file_manifest)).scalar() == 5
    engine.dispose()
    assert statuses["illness"].state == "overdue"
    assert statuses["illness"].last_delivered == D(2026, 11, 2)
    assert statuses["assistance"].state == "on_time"  # 12-01 08:00 in the county
    assert statuses["assistance"].last_delivered == D(2026, 12, 1)
    assert statuses["roster"].state == "never"
    assert on_time_rate(list(statuses.values())) == pytest.approx(1 / 3)
