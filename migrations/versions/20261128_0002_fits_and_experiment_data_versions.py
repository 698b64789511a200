"""fits and experiment data versions

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "fits",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "experiment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("law", sa.String(length=32), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "settings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "run_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("runs_sha256", sa.String(length=64), nullable=True),
        sa.Column("n_runs", sa.Integer(), nullable=True),
        sa.Column("data_version", sa.BigInteger(), nullable=True),
        sa.Column("code_version", sa.String(length=32), nullable=False),
        sa.Column("progress", sa.Double(), nullable=False),
        sa.Column(
            "error",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Double(), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed')", name=op.f("ck_fits_status")
        ),
        sa.CheckConstraint("trigger IN ('request', 'refit')", name=op.f("ck_fits_trigger")),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_fits_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fits")),
    )
    with op.batch_alter_table("fits", schema=None) as batch_op:
        batch_op.create_index(
            "ix_fits_experiment_id_law_method",
            ["experiment_id", "law", "method", "id"],
            unique=False,
        )
        batch_op.create_index("ix_fits_status_not_before", ["status", "not_before"], unique=False)
        batch_op.create_index(
            "uq_fits_queued_refit",
            ["experiment_id", "law", "method"],
            unique=True,
            postgresql_where=sa.text("status = 'queued' AND trigger = 'refit'"),
            sqlite_where=sa.text("status = 'queued' AND trigger = 'refit'"),
        )

    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("data_version", sa.BigInteger(), server_default="0", nullable=False)
        )


def downgrade() -> None:

    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_column("data_version")

    with op.batch_alter_table("fits", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_fits_queued_refit",
            postgresql_where=sa.text("status = 'queued' AND trigger = 'refit'"),
            sqlite_where=sa.text("status = 'queued' AND trigger = 'refit'"),
        )
        batch_op.drop_index("ix_fits_status_not_before")
        batch_op.drop_index("ix_fits_experiment_id_law_method")

    op.drop_table("fits")
