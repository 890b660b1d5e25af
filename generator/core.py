"""generate(): the sample county's bureau files and the ground truth that goes with them."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from generator.datasets import bureaus, extension, national
from generator.layout.defects import (
    add_quirks,
    plant_defects,
    plant_household_defects,
    plant_per_capita_warnings,
    plant_text_defects,
)
from generator.layout.files import FileSpec, WrittenFile, file_specs, messy_specs, write_file
from generator.layout.messy import (
    MESSINESS,
    RejectedFile,
    add_messy_quirks,
    write_messy_truth,
    write_rejected_files,
)
from generator.population import names
from generator.population.county import County, Outsiders
from generator.population.reference import (
    CONTRACTS_DIR,
    REFERENCE_DIR,
    ContractSpec,
    load_contracts,
    load_parameters,
    load_villages,
)
from generator.records import Record
from generator.scenarios import deliveries, risk_cases, risk_truth, risks
from generator.truth import Truth, rule_counts, write_truth

# Write order; also the order of the ground-truth files. Illness comes before settlements
# because the sick get the medical bills.
DATASET_ORDER = (
    "roster",
    "illness",
    "students",
    "housing_safety",
    "assistance",
    "employment",
    "enrollment",
    "settlements",
    *risk_truth.EXTENSION_DATASETS,
)


@dataclass(frozen=True)
class DatasetCounts:
    file: str
    rows: int
    valid: int
    invalid: int
    flagged: int
    dropped: int
    unmatched: int


@dataclass(frozen=True)
class GenerationSummary:
    seed: int
    day: date
    households: int
    persons: int
    outsiders: int
    files: tuple[Path, ...]
    datasets: dict[str, DatasetCounts]
    truth_dir: Path
    truth_households: int
    invalid_by_rule: dict[str, int] = field(default_factory=dict)
    skipped_datasets: tuple[str, ...] = ()
    risks: risks.RiskSummary | None = None
    messiness: str = "normal"
    rejected_files: tuple[RejectedFile, ...] = ()
    roster_layout: str = "agreed"
    not_computable: tuple[str, ...] = ()  # warning rules the roster's layout cannot feed

    @property
    def data_rows(self) -> int:
        return sum(c.rows for c in self.datasets.values())

    @property
    def invalid_rows(self) -> int:
        return sum(c.invalid for c in self.datasets.values())

    @property
    def flagged_rows(self) -> int:
        return sum(c.flagged for c in self.datasets.values())

    @property
    def unmatched_rows(self) -> int:
        return sum(c.unmatched for c in self.datasets.values())


def _rng(seed: int, purpose: str) -> random.Random:
    # A stream per purpose, so adding rows to one dataset does not reshuffle every other one.
    return random.Random(f"{seed}:{purpose}")


def _fill_columns(contract: ContractSpec, records: list[Record]) -> None:
    """Blank optional columns the generator knows nothing about; refuse unknown required ones."""
    for column in contract.columns:
        missing = [r for r in records if column.name not in r.values]
        if not missing:
            continue
        if column.required:
            raise ValueError(
                f"contract {contract.dataset} requires column {column.name!r}, "
                "which the generator does not produce"
            )
        for r in missing:
            r.values[column.name] = None


def generate(
    data_dir: Path,
    truth_dir: Path,
    households: int,
    seed: int,
    day: date,
    invalid_share: float = 0.03,
    unmatched_share: float = 0.03,
    *,
    reference_dir: Path = REFERENCE_DIR,
    contracts_dir: Path = CONTRACTS_DIR,
    messiness: str = "normal",
    days: int = 1,
    risk_scenarios: bool = False,
    roster_layout: str = "agreed",
    late: str | None = None,
) -> GenerationSummary:
    """Write the county's files under data_dir/landing and the ground truth into truth_dir.

    messiness "high" adds every quirk of layout/messy.py to the same files, defects only a
    comparison of rows finds (a roster member with another township, a person under two
    households), a NUL inside a valid text cell and an over-long one (layout/defects.py), plus
    files that must be rejected whole (listed in rejected_files.csv); "normal" gives the same
    bytes as before it existed.

    risk_scenarios plants every warning rule's cases and near misses
    (generator/scenarios/risk_cases.py); days > 1 (which implies them) also writes the bureaus'
    files of the following days into data_dir/drops/<day>/. The warnings' ground truth
    (warnings.csv, candidates.csv) is written in every case.

    roster_layout "national" writes the roster as the national monitoring system exports it
    (generator/datasets/national.py): the same people and facts, every other file the same
    bytes, and not_computable.csv naming the warning rules that export cannot feed.

    late names a dataset (not the roster) whose bureau misses the due date before the first day
    (days > 1): it sent the same rows on the due date before that, and that file alone is what
    landing/ holds (the county's run of that day comes first); the first day's other files go
    to drops/<day>/ like every later day's, and the late bureau sends its file on the second
    day. deliveries.csv has every dataset's state on each of those days (overdue, then late).
    """
    if households < 1:
        raise ValueError("households must be at least 1")
    if messiness not in MESSINESS:
        raise ValueError(f"messiness must be one of {', '.join(MESSINESS)}, not {messiness!r}")
    if roster_layout not in national.ROSTER_LAYOUTS:
        raise ValueError(
            f"roster_layout must be one of {', '.join(national.ROSTER_LAYOUTS)}, "
            f"not {roster_layout!r}"
        )
    if not 0 <= invalid_share < 1 or not 0 <= unmatched_share < 1:
        raise ValueError("shares must be in [0, 1)")
    if late is not None and (days < 2 or late == "roster"):
        # every warning reads the roster, and a late file needs a later day to come on
        raise ValueError("a late dataset needs days > 1 and is not the roster")
    params = load_parameters(reference_dir / "parameters.yaml")
    villages = load_villages(reference_dir / "villages.csv")
    contracts = load_contracts(contracts_dir)
    if "roster" not in contracts:
        raise ValueError(f"no roster contract in {contracts_dir}")
    if late is not None and late not in contracts:
        raise ValueError(f"no contract for the late dataset {late!r} in {contracts_dir}")

    county = County(_rng(seed, "county"), params, villages, day, households)
    outsiders = Outsiders(county, _rng(seed, "outsiders"))
    u = unmatched_share
    records: dict[str, list[Record]] = {"roster": bureaus.roster(county)}
    builders: dict[str, Callable[[], list[Record]]] = {
        "illness": lambda: bureaus.illness(county, outsiders, _rng(seed, "illness"), u),
        "students": lambda: bureaus.students(county, outsiders, _rng(seed, "students"), u),
        "housing_safety": lambda: bureaus.housing_safety(
            county, outsiders, _rng(seed, "housing_safety"), u
        ),
        "assistance": lambda: bureaus.assistance(county, outsiders, _rng(seed, "assistance"), u),
        "employment": lambda: bureaus.employment(county, outsiders, _rng(seed, "employment"), u),
        "enrollment": lambda: bureaus.enrollment(county, outsiders, _rng(seed, "enrollment"), u),
        "settlements": lambda: bureaus.settlements(
            county, outsiders, _rng(seed, "settlements"), u, records.get("illness", [])
        ),
        **extension.extension_builders(county, outsiders, lambda purpose: _rng(seed, purpose), u),
    }
    for dataset in DATASET_ORDER[1:]:
        if dataset in contracts:
            records[dataset] = builders[dataset]()
    if late is not None and late not in records:
        raise ValueError(f"the generator has no builder for the late dataset {late!r}")

    footer_rng = _rng(seed, "footer")
    footer = (
        f"填表人：{names.full_name(footer_rng, footer_rng.random() < 0.5)}  "
        f"审核人：{names.full_name(footer_rng, footer_rng.random() < 0.5)}"
    )

    def specs_on(when: date) -> dict[str, FileSpec]:
        made = {
            **file_specs(params.county_name, when, footer),
            **extension.extension_specs(params.county_name, when),
        }
        return messy_specs(made, params.county_name, when) if messiness == "high" else made

    specs = specs_on(day)
    plan = risk_cases.RiskPlan(county, contracts, seed) if risk_scenarios or days > 1 else None
    # the first run's folder holds the late bureau's earlier file alone: the first day's files
    # wait in drops/ until that run has taken it
    landing = risks.drops_dir(data_dir, day) if late is not None else data_dir / "landing"
    previous = deliveries.due_window(contracts[late], day)[0] if late is not None else None
    written: dict[str, WrittenFile] = {}
    exporter = None
    roster_output = national.RosterOutput()
    gaps: dict[str, tuple[str, ...]] = {}  # rule -> what the roster's layout lacks for it
    if roster_layout == "national":
        exporter = national.NationalRoster(seed, params.county_name, contracts["roster"], records)
        gaps = national.not_computable()
        roster_output = national.RosterOutput(
            write=exporter.write,
            truth_values=national.truth_values,
            history=False,
            not_computable=frozenset(gaps),
        )
    for dataset, rows in records.items():
        contract = contracts[dataset]
        spec = specs[dataset]
        if spec.folder != contract.bureau:
            raise ValueError(f"{dataset}: contract bureau {contract.bureau} != {spec.folder}")
        _fill_columns(contract, rows)
        rng = _rng(seed, f"defects:{dataset}")
        clean = national.keep(rows) if exporter is not None and dataset == "roster" else None
        plant_defects(rng, rows, contract, spec, day, invalid_share)
        if dataset == "roster":
            if clean is not None:
                national_rng = _rng(seed, "national-defects:roster")
                national.replant_defects(national_rng, rows, clean, contract, spec, day)
            plant_per_capita_warnings(rng, rows, invalid_share)
        add_quirks(rng, rows, contract)
        if messiness == "high":
            add_messy_quirks(_rng(seed, f"messy:{dataset}"), rows, contract, spec)
            defects_rng = _rng(seed, f"messy-defects:{dataset}")
            if dataset == "roster":
                plant_household_defects(defects_rng, rows)
            elif dataset == "employment" and spec.fmt == "csv":  # a workbook cannot hold NUL
                plant_text_defects(defects_rng, rows, "employer")
        if plan is not None:
            plan.plant(dataset, rows)
        if exporter is not None and dataset == "roster":
            # written last, when the other bureaus' rows it draws on are all planted
            national.drop_per_capita_warnings(rows)
            continue
        if dataset == late and previous is not None:
            earlier = specs_on(previous)[dataset]
            written[dataset] = write_file(data_dir / "landing", earlier, contract, rows, previous)
            continue
        written[dataset] = write_file(landing, spec, contract, rows, day)
    if exporter is not None:
        specs["roster"] = national.national_spec(params.county_name, day, messiness == "high")
        written["roster"] = exporter.write(
            landing, specs["roster"], contracts["roster"], records["roster"], day
        )
        written = {d: written[d] for d in records}
    rejected: list[RejectedFile] = []
    if messiness == "high":
        rejected = write_rejected_files(landing, params.county_name, day, contracts, specs, records)

    truth = Truth(
        records,
        written,
        {d: contracts[d].bureau for d in records},
        {d: contracts[d].person_column for d in records},
        day,
    )
    counts = {
        d.dataset: DatasetCounts(
            file=d.file,
            rows=d.data_rows,
            valid=d.valid_rows,
            invalid=d.invalid_rows,
            flagged=d.flagged_rows,
            dropped=d.dropped_rows,
            unmatched=d.unmatched_rows,
        )
        for d in truth.datasets()
    }
    truth_households = truth.households()
    if exporter is not None:
        truth_households = national.national_households(truth_households)
    summary = GenerationSummary(
        seed=seed,
        day=day,
        households=len(county.households),
        persons=len(county.persons),
        outsiders=outsiders.created,
        files=tuple(w.path for w in written.values()),
        datasets=counts,
        truth_dir=truth_dir,
        truth_households=len(truth_households),
        invalid_by_rule=rule_counts(truth),
        skipped_datasets=tuple(sorted(set(contracts) - set(records))),
        messiness=messiness,
        rejected_files=tuple(rejected),
        roster_layout=roster_layout,
        not_computable=tuple(sorted(gaps)),
    )
    write_truth(
        truth, truth_dir, truth_households, _summary_json(summary, invalid_share, unmatched_share)
    )
    if messiness == "high":
        write_messy_truth(truth_dir, rejected, written)
    national.write_not_computable(truth_dir, gaps)
    risk_summary = risks.finish(
        data_dir=data_dir,
        truth_dir=truth_dir,
        county=county,
        contracts=contracts,
        records=records,
        written=written,
        specs=specs,
        plan=plan,
        days=days,
        seed=seed,
        roster=roster_output,
        first_landing=landing,
        late=(late, previous) if late is not None and previous is not None else None,
    )
    return replace(summary, risks=risk_summary)


def _summary_json(summary: GenerationSummary, invalid: float, unmatched: float) -> dict[str, Any]:
    return {
        "seed": summary.seed,
        "date": summary.day.isoformat(),
        "roster_layout": summary.roster_layout,
        "not_computable": list(summary.not_computable),
        "invalid_share": invalid,
        "unmatched_share": unmatched,
        "households": summary.households,
        "households_with_valid_rows": summary.truth_households,
        "persons": summary.persons,
        "outsiders": summary.outsiders,
        "files": len(summary.files),
        "datasets": {
            name: {
                "file": c.file,
                "rows": c.rows,
                "valid": c.valid,
                "invalid": c.invalid,
                "flagged": c.flagged,
                "dropped": c.dropped,
                "unmatched": c.unmatched,
            }
            for name, c in summary.datasets.items()
        },
        "invalid_by_rule": summary.invalid_by_rule,
    }
