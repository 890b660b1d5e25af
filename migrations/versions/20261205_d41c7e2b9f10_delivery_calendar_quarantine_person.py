"""The delivery calendar: delivery_status per day, each dataset against when it is due (its
contract's `delivery`), with the last delivery and whether it is late (催报); on quarantine, the
roster person a refused row is about (person_key); and reconciliation_item per day, members a
rule would flag only for their absence from a bureau's list (核对清单)

Rows quarantined before this revision are tied to nobody.

Revision ID: d41c7e2b9f10
Revises: 8c3f2a91d7e4
Create Date: 2026-12-05 18:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d41c7e2b9f10"
down_revision: str | Sequence[str] | None = "8c3f2a91d7e4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# transforms.warehouse.risk_tables.DELIVERY_STATES as of this revision
STATE_CHECK = "state IN ('on_time', 'late', 'overdue', 'never')"


def upgrade() -> None:
    op.create_table(
        "reconciliation_item",
        sa.Column("as_of_date", sa.Date(), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("person_key", sa.String(length=64), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("township", sa.String(length=100), nullable=True),
        sa.Column("village", sa.String(length=100), nullable=True),
        sa.Column("id_masked", sa.String(length=18), nullable=True),
        sa.Column("name_masked", sa.String(length=100), nullable=True),
        sa.Column("dataset", sa.String(length=64), nullable=False),
        sa.Column("bureau", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("detail_zh", sa.Text(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("first_seen", sa.Date(), nullable=False),
        sa.Column("deliveries_since", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.CheckConstraint("kind IN ('not_listed', 'refused')", name="ck_reconciliation_item_kind"),
        sa.CheckConstraint("status IN ('open', 'escalated')", name="ck_reconciliation_item_status"),
        sa.PrimaryKeyConstraint("as_of_date", "rule_id", "person_key"),
    )
    op.create_table(
        "delivery_status",
        sa.Column("as_of_date", sa.Date(), nullable=False),
        sa.Column("dataset", sa.String(length=64), nullable=False),
        sa.Column("bureau", sa.String(length=64), nullable=False),
        sa.Column("bureau_zh", sa.String(length=100), nullable=False),
        sa.Column("title_zh", sa.String(length=200), nullable=False),
        sa.Column("cadence_zh", sa.String(length=100), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("next_due_date", sa.Date(), nullable=False),
        sa.Column("last_delivered", sa.Date(), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("days_late", sa.Integer(), nullable=False),
        sa.Column("note_zh", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.CheckConstraint(STATE_CHECK, name="ck_delivery_status_state"),
        sa.PrimaryKeyConstraint("as_of_date", "dataset"),
    )
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.add_column(sa.Column("person_key", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_quarantine_person_key", ["person_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_index("ix_quarantine_person_key")
        batch_op.drop_column("person_key")
    op.drop_table("delivery_status")
    op.drop_table("reconciliation_item")
