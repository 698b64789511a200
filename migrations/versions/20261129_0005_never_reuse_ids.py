"""never reuse ids: SQLite tables rebuilt with AUTOINCREMENT

Without AUTOINCREMENT SQLite gives a deleted row's id (the largest) to the next insert, so
/v1/fits/1 could come to name another fit. SQLite cannot add AUTOINCREMENT in place: each table
is rebuilt (batch mode: create, copy, drop, rename), rows and ids kept, and the autoincrement
counter starts above the largest id in use. PostgreSQL sequences never reuse ids: nothing to do.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("experiments", "runs", "fits", "jobs", "api_keys")
# Reflection does not carry a partial index's WHERE clause: dropped and made again by hand.
QUEUED_REFIT = sa.text("status = 'queued' AND trigger = 'refit'")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.drop_index("uq_fits_queued_refit", table_name="fits")
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass
    op.create_index(
        "uq_fits_queued_refit",
        "fits",
        ["experiment_id", "law", "method"],
        unique=True,
        sqlite_where=QUEUED_REFIT,
        postgresql_where=QUEUED_REFIT,
    )


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)
