"""pulled_file: every remote file version pulled from a bureau's own server (SFTP, SMB) into the
landing folder, so a rerun never pulls it twice (transforms.intake.pull)

Revision ID: 7a4e2c9d1b53
Revises: 5e7a1c3d9b20
Create Date: 2026-12-07 00:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7a4e2c9d1b53"
down_revision: str | Sequence[str] | None = "5e7a1c3d9b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pulled_file",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("bureau", sa.String(length=64), nullable=False),
        sa.Column("connection", sa.String(length=250), nullable=False),
        sa.Column("remote_key", sa.String(length=64), nullable=False),
        sa.Column("remote_path", sa.String(length=1000), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("remote_mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("landing_name", sa.String(length=500), nullable=True),
        sa.Column("pulled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("remote_deleted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "bureau", "remote_key", "size_bytes", "remote_mtime_ns", name="uq_pulled_file_version"
        ),
    )
    op.create_index("ix_pulled_file_sha256", "pulled_file", ["sha256"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_pulled_file_sha256", table_name="pulled_file")
    op.drop_table("pulled_file")
