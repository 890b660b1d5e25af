"""The field's answer comes back: stg_field_visits holds the townships' returned 入户核实
workbooks (contracts/returns/field_visits.yaml, keyed by 户编号, so person_key is null), and
warning_follow_up each warning sent for a home check with the township's answer and what it
means for the warning (awaiting, overdue, confirmed, dismissed, data_error, evidence_changed,
other); stg_reconciliation_answers holds the bureaus' answered 核对清单 (确认 makes a gap a
warning at once); quarantine.tie_keys, the keys a refused row can still be tied by once the roster
has its person (a bureau's list that came before the roster)

Revision ID: 5e7a1c3d9b20
Revises: d41c7e2b9f10
Create Date: 2026-12-06 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e7a1c3d9b20"
down_revision: str | Sequence[str] | None = "d41c7e2b9f10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# transforms.warehouse.risk_tables.FOLLOW_UP_STATES as of this revision
STATE_CHECK = (
    "state IN ('awaiting', 'overdue', 'confirmed', 'dismissed', 'data_error', "
    "'evidence_changed', 'other')"
)


def upgrade() -> None:
    op.create_table(
        "stg_field_visits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("manifest_id", sa.Integer(), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("sheet", sa.String(length=200), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("person_key", sa.String(length=64), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("sex", sa.String(length=2), nullable=True),
        sa.Column("matched_household_id", sa.String(length=64), nullable=True),
        sa.Column("township", sa.String(length=500), nullable=True),
        sa.Column("village", sa.String(length=500), nullable=True),
        sa.Column("household_id", sa.String(length=64), nullable=True),
        sa.Column("rule_name", sa.String(length=500), nullable=True),
        sa.Column("result", sa.String(length=50), nullable=True),
        sa.Column("verifier_name", sa.String(length=500), nullable=True),
        sa.Column("verified_on", sa.Date(), nullable=True),
        sa.Column("remarks", sa.String(length=500), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["manifest_id"], ["file_manifest.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "manifest_id", "sheet", "source_row", name="uq_stg_field_visits_lineage"
        ),
    )
    op.create_index(
        "ix_stg_field_visits_manifest_id", "stg_field_visits", ["manifest_id"], unique=False
    )
    op.create_index(
        "ix_stg_field_visits_person_key", "stg_field_visits", ["person_key"], unique=False
    )
    op.create_index(
        "ix_stg_field_visits_matched_household_id",
        "stg_field_visits",
        ["matched_household_id"],
        unique=False,
    )
    op.create_table(
        "stg_reconciliation_answers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("manifest_id", sa.Integer(), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("sheet", sa.String(length=200), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("person_key", sa.String(length=64), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("sex", sa.String(length=2), nullable=True),
        sa.Column("matched_household_id", sa.String(length=64), nullable=True),
        sa.Column("item_code", sa.String(length=64), nullable=True),
        sa.Column("answer", sa.String(length=50), nullable=True),
        sa.Column("remarks", sa.String(length=500), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["manifest_id"], ["file_manifest.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "manifest_id", "sheet", "source_row", name="uq_stg_reconciliation_answers_lineage"
        ),
    )
    for column in ("manifest_id", "person_key", "matched_household_id"):
        op.create_index(
            f"ix_stg_reconciliation_answers_{column}",
            "stg_reconciliation_answers",
            [column],
            unique=False,
        )
    op.create_table(
        "warning_follow_up",
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("rule_name_zh", sa.String(length=200), nullable=False),
        sa.Column("township", sa.String(length=100), nullable=True),
        sa.Column("village", sa.String(length=100), nullable=True),
        sa.Column("sent_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("result", sa.String(length=50), nullable=True),
        sa.Column("verified_on", sa.Date(), nullable=True),
        sa.Column("verifier_masked", sa.String(length=100), nullable=True),
        sa.Column("remarks_masked", sa.Text(), nullable=True),
        sa.Column("visit_manifest_id", sa.Integer(), nullable=True),
        sa.Column("visit_sheet", sa.String(length=200), nullable=True),
        sa.Column("visit_row", sa.Integer(), nullable=True),
        sa.Column("quiet_until", sa.Date(), nullable=True),
        sa.Column("evidence_changed_on", sa.Date(), nullable=True),
        sa.Column("bureaus", sa.JSON(), nullable=False),
        sa.Column("as_of_date", sa.Date(), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.CheckConstraint(STATE_CHECK, name="ck_warning_follow_up_state"),
        sa.PrimaryKeyConstraint("household_id", "rule_id"),
    )
    op.create_index(
        "ix_warning_follow_up_township", "warning_follow_up", ["township"], unique=False
    )
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tie_keys", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_column("tie_keys")
    for column in ("manifest_id", "person_key", "matched_household_id"):
        op.drop_index(
            f"ix_stg_reconciliation_answers_{column}", table_name="stg_reconciliation_answers"
        )
    op.drop_table("stg_reconciliation_answers")
    op.drop_index("ix_warning_follow_up_township", table_name="warning_follow_up")
    op.drop_table("warning_follow_up")
    op.drop_index("ix_stg_field_visits_matched_household_id", table_name="stg_field_visits")
    op.drop_index("ix_stg_field_visits_person_key", table_name="stg_field_visits")
    op.drop_index("ix_stg_field_visits_manifest_id", table_name="stg_field_visits")
    op.drop_table("stg_field_visits")
