"""runs: how each loss was obtained (loss_provenance, cooldown_fraction), trunk_key, and loss
curves (run_curves)

Existing rows become end_of_schedule (the server default): every run stored so far was posted
as one final loss, which is what clients that do not say mean. SQLite cannot add CHECK
constraints in place: the runs table is rebuilt (batch mode), keeping AUTOINCREMENT (0005).

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOSS_PROVENANCE_CHECK = "loss_provenance IN ('end_of_schedule', 'after_cooldown', 'mid_schedule')"
COOLDOWN_CHECK = (
    # IS NOT NULL spelled out: a CHECK that evaluates to NULL passes.
    "(loss_provenance = 'after_cooldown' AND cooldown_fraction IS NOT NULL "
    "AND cooldown_fraction > 0 AND cooldown_fraction <= 1) "
    "OR (loss_provenance <> 'after_cooldown' AND cooldown_fraction IS NULL)"
)


def upgrade() -> None:
    with op.batch_alter_table("runs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(
            sa.Column(
                "loss_provenance",
                sa.String(length=16),
                server_default="end_of_schedule",
                nullable=False,
            )
        )
        batch.add_column(sa.Column("cooldown_fraction", sa.Double(), nullable=True))
        batch.add_column(sa.Column("trunk_key", sa.String(length=200), nullable=True))
        batch.add_column(
            sa.Column("curve_points", sa.Integer(), server_default="0", nullable=False)
        )
        batch.create_check_constraint(op.f("ck_runs_loss_provenance"), LOSS_PROVENANCE_CHECK)
        batch.create_check_constraint(op.f("ck_runs_cooldown_fraction"), COOLDOWN_CHECK)
    op.create_table(
        "run_curves",
        sa.Column(
            "run_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.LargeBinary(), nullable=False),
        sa.Column("loss", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("points > 0", name=op.f("ck_run_curves_positive_points")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_curves_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_run_curves")),
    )


def downgrade() -> None:
    op.drop_table("run_curves")
    with op.batch_alter_table("runs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_constraint(op.f("ck_runs_cooldown_fraction"), type_="check")
        batch.drop_constraint(op.f("ck_runs_loss_provenance"), type_="check")
        batch.drop_column("curve_points")
        batch.drop_column("trunk_key")
        batch.drop_column("cooldown_fraction")
        batch.drop_column("loss_provenance")
