"""The delivery calendar's ground truth (deliveries.csv) and the late bureau of the multi-day
scenario (generate(..., late=...))."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

from generator import GenerationSummary, generate
from generator.__main__ import main
from generator.population.reference import load_contracts
from generator.scenarios.deliveries import due_window, state_on

D = dt.date
FIRST = D(2026, 11, 11)  # the day after the 10th: the employment bureau missed its due date
CONTRACTS = load_contracts()


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_contracts_calendars_are_read_from_their_files() -> None:
    assert CONTRACTS["roster"].due_day == 5 and CONTRACTS["illness"].due_day == 10
    assert CONTRACTS["students"].due_months == (3, 9)
    assert CONTRACTS["employment"].due_months == tuple(range(1, 13))


@pytest.mark.parametrize(
    ("dataset", "day", "window"),
    [
        ("illness", D(2026, 12, 10), (D(2026, 11, 10), D(2026, 12, 10))),  # the due day itself
        ("illness", D(2026, 12, 9), (D(2026, 10, 10), D(2026, 11, 10))),
        ("illness", D(2027, 1, 3), (D(2026, 11, 10), D(2026, 12, 10))),
        ("roster", D(2026, 11, 28), (D(2026, 10, 5), D(2026, 11, 5))),
        ("students", D(2026, 3, 9), (D(2025, 3, 10), D(2025, 9, 10))),
        ("students", D(2026, 11, 28), (D(2026, 3, 10), D(2026, 9, 10))),
    ],
)
def test_the_due_window(dataset: str, day: dt.date, window: tuple[dt.date, dt.date]) -> None:
    assert due_window(CONTRACTS[dataset], day) == window


@pytest.mark.parametrize(
    ("delivered", "day", "state", "days_late"),
    [
        ((), D(2026, 11, 12), "never", 2),
        ((D(2026, 11, 10),), D(2026, 11, 12), "on_time", 0),  # on the due day: in time
        ((D(2026, 10, 11),), D(2026, 11, 12), "on_time", 0),  # the window opens after the 10th
        ((D(2026, 10, 10),), D(2026, 11, 12), "overdue", 2),
        ((D(2026, 10, 10), D(2026, 11, 11)), D(2026, 11, 12), "late", 1),
        ((D(2026, 10, 10), D(2026, 11, 13)), D(2026, 11, 12), "overdue", 2),  # not yet come
        ((D(2026, 11, 11),), D(2026, 11, 12), "on_time", 0),  # the first file ever: on time
        ((D(2026, 11, 11), D(2026, 11, 12)), D(2026, 11, 12), "on_time", 0),
        ((D(2026, 9, 1), D(2026, 11, 11)), D(2026, 11, 12), "late", 1),
    ],
)
def test_a_datasets_state_on_a_day(
    delivered: tuple[dt.date, ...], day: dt.date, state: str, days_late: int
) -> None:
    truth = state_on(CONTRACTS["housing_safety"], delivered, day)
    assert (truth.state, truth.days_late, truth.due_date) == (state, days_late, D(2026, 11, 10))
    past = [d for d in delivered if d <= day]
    assert truth.last_delivered == (max(past) if past else None)


@pytest.mark.parametrize(
    ("delivered", "state", "days_late", "due"),
    [
        ((D(2026, 10, 9),), "on_time", 0, D(2026, 10, 10)),  # the day is not over
        ((D(2026, 10, 9), D(2026, 11, 10)), "on_time", 0, D(2026, 11, 10)),  # came today
        ((D(2026, 9, 9),), "overdue", 31, D(2026, 10, 10)),  # overdue since the last one
        ((), "never", 31, D(2026, 10, 10)),
    ],
)
def test_on_the_due_date_itself_nothing_is_overdue_yet(
    delivered: tuple[dt.date, ...], state: str, days_late: int, due: dt.date
) -> None:
    truth = state_on(CONTRACTS["housing_safety"], delivered, D(2026, 11, 10))
    assert (truth.state, truth.days_late, truth.due_date) == (state, days_late, due)


@pytest.fixture(scope="module")
def late(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationSummary]:
    base = tmp_path_factory.mktemp("late")
    summary = generate(
        base / "data", base / "truth", households=40, seed=9, day=FIRST, days=3, late="employment"
    )
    return base, summary


def test_landing_holds_the_late_bureaus_earlier_file_alone(
    late: tuple[Path, GenerationSummary],
) -> None:
    base, summary = late
    assert summary.risks is not None
    assert summary.risks.run_days == (D(2026, 10, 10), FIRST, D(2026, 11, 12), D(2026, 11, 13))
    landing = [
        p.relative_to(base / "data" / "landing") for p in (base / "data" / "landing").rglob("*.*")
    ]
    assert [str(p) for p in landing] == ["hr_social_security/某县2026年10月务工就业及社保情况.csv"]
    first = base / "data" / "drops" / FIRST.isoformat()
    assert (first / "rural_revitalization").is_dir() and not (first / "hr_social_security").exists()
    second = base / "data" / "drops" / "2026-11-12" / "hr_social_security"
    assert [p.name for p in second.iterdir()] == [
        "某县2026年11月务工就业及社保情况（11月12日更正）.csv"
    ]
    files = _rows(base / "truth" / "risk_files.csv")
    assert [f["day"] for f in files if f["dataset"] == "employment"] == [
        "2026-10-10",
        "2026-11-12",
        "2026-11-13",
    ]


def test_the_late_bureau_is_overdue_then_late_and_the_others_on_time(
    late: tuple[Path, GenerationSummary],
) -> None:
    base, _ = late
    rows = _rows(base / "truth" / "deliveries.csv")
    assert len(rows) == 4 * len(CONTRACTS)
    employment = [
        (r["day"], r["state"], r["days_late"], r["last_delivered"], r["due_date"])
        for r in rows
        if r["dataset"] == "employment"
    ]
    assert employment == [
        ("2026-10-10", "on_time", "0", "2026-10-10", "2026-10-10"),
        ("2026-11-11", "overdue", "1", "2026-10-10", "2026-11-10"),
        ("2026-11-12", "late", "2", "2026-11-12", "2026-11-10"),
        ("2026-11-13", "late", "2", "2026-11-13", "2026-11-10"),
    ]
    assert {r["bureau"] for r in rows if r["dataset"] == "employment"} == {"hr_social_security"}
    others = [r for r in rows if r["dataset"] != "employment"]
    assert {r["state"] for r in others if r["day"] == "2026-10-10"} == {"never"}
    assert {r["state"] for r in others if r["day"] != "2026-10-10"} == {"on_time"}


def test_the_warnings_truth_is_what_the_delivered_files_give(
    late: tuple[Path, GenerationSummary], tmp_path: Path
) -> None:
    """The earlier file holds the first day's rows and the late one comes with the second day's
    changes, so each day's warnings are those of the county where the bureau was on time."""
    base, _ = late
    generate(tmp_path / "data", tmp_path / "truth", households=40, seed=9, day=FIRST, days=3)
    for name in ("warnings.csv", "candidates.csv", "reconciliation.csv", "risk_scenarios.csv"):
        assert _rows(base / "truth" / name) == _rows(tmp_path / "truth" / name), name
    on_time = _rows(tmp_path / "truth" / "deliveries.csv")
    assert {r["state"] for r in on_time} == {"on_time"}


def test_a_late_dataset_needs_a_later_day_and_is_not_the_roster(tmp_path: Path) -> None:
    for days, dataset in ((1, "employment"), (3, "roster")):
        with pytest.raises(ValueError, match="late dataset"):
            generate(tmp_path, tmp_path, households=5, seed=1, day=FIRST, days=days, late=dataset)
    with pytest.raises(ValueError, match="no contract"):
        generate(tmp_path, tmp_path, households=5, seed=1, day=FIRST, days=2, late="weather")
    with pytest.raises(SystemExit):
        main(["--data-dir", str(tmp_path), "--late", "employment"])
