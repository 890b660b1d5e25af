"""Rules and indicators whose inputs were not delivered are recorded as 数据不足: rule_status
per day, and a status and reason on plan_indicator

Indicators computed before this revision count as computed.

Revision ID: 6b1e0c5d9a47
Revises: 479891affdcb
Create Date: 2026-12-02 09:12:31.204518
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6b1e0c5d9a47"
down_revision: str | Sequence[str] | None = "479891affdcb"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# transforms.warehouse.risk_tables.COMPUTE_STATUSES as of this revision
STATUS_CHECK = "status IN ('computed', 'insufficient_data')"


def upgrade() -> None:
    op.create_table(
        "rule_status",
        sa.Column("as_of_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name_zh", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason_zh", sa.Text(), nullable=True),
        sa.Column("missing_inputs", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.CheckConstraint("kind IN ('rule', 'indicator')", name="ck_rule_status_kind"),
        sa.CheckConstraint(STATUS_CHECK, name="ck_rule_status_status"),
        sa.PrimaryKeyConstraint("as_of_date", "kind", "code"),
    )
    with op.batch_alter_table("plan_indicator", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=20), server_default="computed", nullable=False)
        )
        batch_op.add_column(sa.Column("reason_zh", sa.Text(), nullable=True))
        batch_op.create_check_constraint("ck_plan_indicator_status", STATUS_CHECK)


def downgrade() -> None:
    with op.batch_alter_table("plan_indicator", schema=None) as batch_op:
        batch_op.drop_constraint("ck_plan_indicator_status", type_="check")
        batch_op.drop_column("reason_zh")
        batch_op.drop_column("status")
    op.drop_table("rule_status")
