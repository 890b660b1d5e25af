"""The roster as the national monitoring system exports it: the export's own columns in
stg_roster (its signals for rules, its dates, its phones masked) and the plaintext phones beside
the plaintext IDs in restricted.person_identity

Rows loaded before this revision have none of these columns' values.

Revision ID: 8c3f2a91d7e4
Revises: 6b1e0c5d9a47
Create Date: 2026-12-05 15:02:10.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "8c3f2a91d7e4"
down_revision: str | Sequence[str] | None = "6b1e0c5d9a47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# contracts/roster.yaml's columns of the national export, typed as transforms.warehouse.tables types them
ROSTER_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("person_number", sa.String(length=500)),
    ("data_date", sa.Date()),
    ("county", sa.String(length=500)),
    ("natural_village", sa.String(length=500)),
    ("ethnicity", sa.String(length=500)),
    ("education", sa.String(length=500)),
    ("school_status", sa.String(length=500)),
    ("months_worked", sa.Integer()),
    ("serious_illness_insured", sa.Boolean()),
    ("poverty_cause", sa.String(length=500)),
    ("dilapidated_house", sa.Boolean()),
    ("safe_drinking_water", sa.Boolean()),
    ("household_phone", sa.Text()),
    ("person_phone", sa.Text()),
    ("first_identified_date", sa.Date()),
    ("person_identified_date", sa.Date()),
    ("risk_eliminated_date", sa.Date()),
)
PHONES = ("household_phone", "person_phone")


def _restricted() -> str | None:
    # SQLite has no schemas: there the restricted table is a plain table (the engine's
    # schema_translate_map, which alembic's ALTER TABLE does not apply)
    return None if op.get_bind().dialect.name == "sqlite" else "restricted"


def upgrade() -> None:
    with op.batch_alter_table("stg_roster", schema=None) as batch_op:
        for name, kind in ROSTER_COLUMNS:
            batch_op.add_column(sa.Column(name, kind, nullable=True))
    with op.batch_alter_table("person_identity", schema=_restricted()) as batch_op:
        for name in PHONES:
            batch_op.add_column(sa.Column(name, sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("person_identity", schema=_restricted()) as batch_op:
        for name in reversed(PHONES):
            batch_op.drop_column(name)
    with op.batch_alter_table("stg_roster", schema=None) as batch_op:
        for name, _ in reversed(ROSTER_COLUMNS):
            batch_op.drop_column(name)
