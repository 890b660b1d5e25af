"""Warehouse tables of the risk warnings, the inclusion candidates and the plan indicators.

Defined on the warehouse's metadata, so `create_schema` makes them on SQLite and PostgreSQL
alike; importing this module also registers the platform views (transforms/warehouse/views.py).

- `risk_warning`: one row per household x rule ever flagged, with its current state.
- `risk_warning_event`: what happened to each warning on each county day (new, still_open,
  resolved, reopened); a day is recomputed by replacing its events, so a re-run is idempotent
  and "what was open on day D" is a query.
- `inclusion_candidate`: per day, people with a risk signal who are not on the roster.
- `plan_indicator`: per day, the plan's indicators per county, township (and village).
- `rule_status`: per day, whether each rule and indicator could be computed, and if not
  (数据不足) which of its inputs were not delivered.
- `reconciliation_item`: per day, members a rule would flag only for their absence from a
  bureau's list (missing, or listed in a refused row): a gap for the bureau (核对清单), open,
  or escalated to a warning once it persisted through the rule's `escalate_after` deliveries.
- `delivery_status`: per day, each dataset against its delivery calendar (transforms.intake.
  delivery): due date, last delivery, on time or late (催报).
- `warning_follow_up`: each warning sent to a township for the home check (入户核实), with what
  the township returned (transforms.risk.follow_up): awaiting, overdue, confirmed, dismissed
  and kept quiet, evidence changed since, or sent back to a bureau as a data problem.
"""

from __future__ import annotations

import sqlalchemy as sa

from transforms.warehouse import views
from transforms.warehouse.tables import metadata

EVENTS = ("new", "still_open", "resolved", "reopened")
OPEN_EVENTS = ("new", "still_open", "reopened")
STATUSES = ("open", "resolved")
LEVELS = ("county", "township", "village")
# whether a rule or indicator could be computed on a day (insufficient_data: 数据不足)
COMPUTE_STATUSES = ("computed", "insufficient_data")
STATUS_KINDS = ("rule", "indicator")
RECONCILIATION_KINDS = ("not_listed", "refused")
RECONCILIATION_STATUSES = ("open", "escalated")
# transforms.intake.delivery.STATES
DELIVERY_STATES = ("on_time", "late", "overdue", "never")
# transforms.risk.follow_up.FOLLOW_UP_STATES
FOLLOW_UP_STATES = (
    "awaiting",
    "overdue",
    "confirmed",
    "dismissed",
    "data_error",
    "evidence_changed",
    "other",
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


risk_warning = sa.Table(
    "risk_warning",
    metadata,
    sa.Column("household_id", sa.String(64), primary_key=True),
    sa.Column("rule_id", sa.String(64), primary_key=True),
    sa.Column("rule_name_zh", sa.String(200), nullable=False),
    sa.Column("risk_type", sa.String(20), nullable=False, index=True),
    sa.Column("township", sa.String(100), index=True),
    sa.Column("village", sa.String(100)),
    # the householder, masked (first 6 + ******** + last 4; surname + *)
    sa.Column("head_id_masked", sa.String(18)),
    sa.Column("head_name_masked", sa.String(100)),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("first_seen", sa.Date, nullable=False),
    sa.Column("last_seen", sa.Date, nullable=False),
    sa.Column("resolved_on", sa.Date),
    sa.Column("reopened_count", sa.Integer, nullable=False),
    sa.Column("last_event", sa.String(12), nullable=False),
    sa.Column("last_event_date", sa.Date, nullable=False),
    # values, parameters and lineage (bureau, file, sheet, row) of the latest open day; masked
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("evidence_zh", sa.Text, nullable=False),
    sa.Column("updated_run_id", sa.String(250), nullable=False),
    sa.CheckConstraint(_in("status", STATUSES), name="ck_risk_warning_status"),
    sa.CheckConstraint(_in("last_event", EVENTS), name="ck_risk_warning_last_event"),
)

risk_warning_event = sa.Table(
    "risk_warning_event",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_date", sa.Date, nullable=False, index=True),
    sa.Column("household_id", sa.String(64), nullable=False),
    sa.Column("rule_id", sa.String(64), nullable=False),
    sa.Column("event", sa.String(12), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("risk_type", sa.String(20), nullable=False),
    sa.Column("township", sa.String(100)),
    sa.Column("village", sa.String(100)),
    # null on a 'resolved' event: the signal is gone
    sa.Column("evidence", sa.JSON),
    sa.Column("evidence_zh", sa.Text),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.UniqueConstraint("event_date", "household_id", "rule_id", name="uq_risk_warning_event_day"),
    sa.Index("ix_risk_warning_event_key", "household_id", "rule_id", "event_date"),
    sa.CheckConstraint(_in("event", EVENTS), name="ck_risk_warning_event_event"),
    sa.CheckConstraint(_in("status", STATUSES), name="ck_risk_warning_event_status"),
)

inclusion_candidate = sa.Table(
    "inclusion_candidate",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("snapshot_date", sa.Date, nullable=False, index=True),
    sa.Column("rule_id", sa.String(64), nullable=False),
    sa.Column("risk_type", sa.String(20), nullable=False),
    # the keyed hash of the ID (transforms.privacy.keys); the plaintext stays in person_identity
    sa.Column("person_key", sa.String(64), nullable=False),
    sa.Column("id_masked", sa.String(18)),
    sa.Column("name_masked", sa.String(100)),
    sa.Column("dataset", sa.String(64), nullable=False),
    sa.Column("bureau", sa.String(64), nullable=False),
    # the row that carries the signal: file, sheet and row as Excel shows it
    sa.Column("manifest_id", sa.Integer, sa.ForeignKey("file_manifest.id"), nullable=False),
    sa.Column("file_name", sa.String(500), nullable=False),
    sa.Column("sheet", sa.String(200), nullable=False),
    sa.Column("source_row", sa.Integer, nullable=False),
    # where the bureau's data says the person lives (null when its file does not say)
    sa.Column("township", sa.String(100)),
    sa.Column("village", sa.String(100)),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("evidence_zh", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.UniqueConstraint(
        "snapshot_date", "rule_id", "person_key", name="uq_inclusion_candidate_day"
    ),
)

plan_indicator = sa.Table(
    "plan_indicator",
    metadata,
    sa.Column("as_of_date", sa.Date, primary_key=True),
    sa.Column("level", sa.String(10), primary_key=True),
    # the county's name, a township, or "township/village"
    sa.Column("area", sa.String(200), primary_key=True),
    sa.Column("indicator", sa.String(64), primary_key=True),
    # the year the figure is about: the income year for income figures, else the calendar year
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("township", sa.String(100)),
    sa.Column("name_zh", sa.String(200), nullable=False),
    sa.Column("value", sa.Numeric(18, 4)),
    sa.Column("target", sa.Numeric(18, 4)),
    sa.Column("unit", sa.String(10), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    # insufficient_data (数据不足): its inputs were not delivered; value null, reason_zh says why
    sa.Column("status", sa.String(20), nullable=False, server_default="computed"),
    sa.Column("reason_zh", sa.Text),
    sa.CheckConstraint(_in("level", LEVELS), name="ck_plan_indicator_level"),
    sa.CheckConstraint(_in("status", COMPUTE_STATUSES), name="ck_plan_indicator_status"),
)

rule_status = sa.Table(
    "rule_status",
    metadata,
    sa.Column("as_of_date", sa.Date, primary_key=True),
    sa.Column("kind", sa.String(10), primary_key=True),
    # the rule id (rules/warning_rules.yaml) or the indicator code (rules/plan_indicators.yaml)
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("name_zh", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    # why it could not be computed; for a computed one, a note on how (or null)
    sa.Column("reason_zh", sa.Text),
    # the inputs not delivered, as "dataset" or "dataset.column"
    sa.Column("missing_inputs", sa.JSON, nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.CheckConstraint(_in("kind", STATUS_KINDS), name="ck_rule_status_kind"),
    sa.CheckConstraint(_in("status", COMPUTE_STATUSES), name="ck_rule_status_status"),
)

reconciliation_item = sa.Table(
    "reconciliation_item",
    metadata,
    sa.Column("as_of_date", sa.Date, primary_key=True),
    sa.Column("rule_id", sa.String(64), primary_key=True),
    # the keyed hash of the member's ID (transforms.privacy.keys)
    sa.Column("person_key", sa.String(64), primary_key=True),
    sa.Column("household_id", sa.String(64), nullable=False),
    sa.Column("township", sa.String(100)),
    sa.Column("village", sa.String(100)),
    sa.Column("id_masked", sa.String(18)),
    sa.Column("name_masked", sa.String(100)),
    sa.Column("dataset", sa.String(64), nullable=False),
    sa.Column("bureau", sa.String(64), nullable=False),
    # not_listed: not in the list at all; refused: listed in a row that was quarantined
    sa.Column("kind", sa.String(12), nullable=False),
    sa.Column("detail_zh", sa.Text, nullable=False),
    # the refused rows (bureau, file, sheet, row), masked
    sa.Column("sources", sa.JSON, nullable=False),
    sa.Column("first_seen", sa.Date, nullable=False),
    # the bureau's deliveries of the dataset since first_seen, the gap still there
    sa.Column("deliveries_since", sa.Integer, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.CheckConstraint(_in("kind", RECONCILIATION_KINDS), name="ck_reconciliation_item_kind"),
    sa.CheckConstraint(
        _in("status", RECONCILIATION_STATUSES), name="ck_reconciliation_item_status"
    ),
)

delivery_status = sa.Table(
    "delivery_status",
    metadata,
    sa.Column("as_of_date", sa.Date, primary_key=True),
    sa.Column("dataset", sa.String(64), primary_key=True),
    sa.Column("bureau", sa.String(64), nullable=False),
    sa.Column("bureau_zh", sa.String(100), nullable=False),
    sa.Column("title_zh", sa.String(200), nullable=False),
    sa.Column("cadence_zh", sa.String(100), nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("next_due_date", sa.Date, nullable=False),
    sa.Column("last_delivered", sa.Date),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("days_late", sa.Integer, nullable=False),
    sa.Column("note_zh", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.CheckConstraint(_in("state", DELIVERY_STATES), name="ck_delivery_status_state"),
)

warning_follow_up = sa.Table(
    "warning_follow_up",
    metadata,
    sa.Column("household_id", sa.String(64), primary_key=True),
    sa.Column("rule_id", sa.String(64), primary_key=True),
    sa.Column("rule_name_zh", sa.String(200), nullable=False),
    sa.Column("township", sa.String(100), index=True),
    sa.Column("village", sa.String(100)),
    # the day the warning last went to the township's 入户核实 workbook, and when the visit is due
    sa.Column("sent_on", sa.Date, nullable=False),
    sa.Column("due_on", sa.Date, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    # the township's latest answer (null: not visited yet), who (masked) and when
    sa.Column("result", sa.String(50)),
    sa.Column("verified_on", sa.Date),
    sa.Column("verifier_masked", sa.String(100)),
    sa.Column("remarks_masked", sa.Text),
    # where the answer came from: the returned workbook's manifest row, sheet and row
    sa.Column("visit_manifest_id", sa.Integer),
    sa.Column("visit_sheet", sa.String(200)),
    sa.Column("visit_row", sa.Integer),
    # a dismissed (情况不属实) or data-problem (数据有误) warning is not sent again until then,
    # unless its evidence changes (evidence_changed_on)
    sa.Column("quiet_until", sa.Date),
    sa.Column("evidence_changed_on", sa.Date),
    # 数据有误: the bureaus whose data the warning rests on, to reconcile (JSON list of codes)
    sa.Column("bureaus", sa.JSON, nullable=False),
    sa.Column("as_of_date", sa.Date, nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.CheckConstraint(_in("state", FOLLOW_UP_STATES), name="ck_warning_follow_up_state"),
)

views.register(metadata)
