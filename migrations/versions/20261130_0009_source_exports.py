"""source exports: fits logged back to MLflow by a source

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("log_results", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("export_not_before", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("last_export_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_export_error", sa.Text(), nullable=True))
    op.create_table(
        "source_exports",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("source_id", ID, nullable=False),
        sa.Column("fit_id", ID, nullable=False),
        sa.Column("mlflow_experiment_id", sa.String(length=64), nullable=False),
        sa.Column("mlflow_run_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_source_exports_source_id_sources"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["fit_id"],
            ["fits.id"],
            name=op.f("fk_source_exports_fit_id_fits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_exports")),
        sa.UniqueConstraint("source_id", "fit_id", name=op.f("uq_source_exports_source_id_fit_id")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_source_exports_fit_id", "source_exports", ["fit_id"])


def downgrade() -> None:
    op.drop_index("ix_source_exports_fit_id", table_name="source_exports")
    op.drop_table("source_exports")
    # Dropping columns recreates the table on SQLite: keep its ids never reused.
    with op.batch_alter_table(
        "sources", schema=None, table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.drop_column("last_export_error")
        batch_op.drop_column("last_export_at")
        batch_op.drop_column("export_not_before")
        batch_op.drop_column("log_results")
