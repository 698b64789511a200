"""One migration chain: empty -> head -> base, and no drift from the ORM models, on each backend."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from service.db import alembic_config, current_revision, head_revision
from service.store.models import Base
from tests.conftest import create_postgres_database, drop_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    url = create_postgres_database("scaling_migrations")
    yield url
    drop_postgres_database(url)


def table_names(url: str) -> set[str]:
    engine = sa.create_engine(url)
    names = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    return names


def test_upgrade_check_downgrade(empty_url: str) -> None:
    config = alembic_config(empty_url)
    command.upgrade(config, "head")
    engine = sa.create_engine(empty_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()
    assert set(Base.metadata.tables) <= table_names(empty_url)
    command.check(config)  # raises when the models and the migrations disagree
    command.downgrade(config, "base")
    assert table_names(empty_url) <= {"alembic_version"}
    command.upgrade(config, "head")
    assert set(Base.metadata.tables) <= table_names(empty_url)


def test_single_linear_chain() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1


def test_constraints_follow_the_naming_convention(empty_url: str) -> None:
    command.upgrade(alembic_config(empty_url), "head")
    engine = sa.create_engine(empty_url)
    inspector = sa.inspect(engine)
    for table in Base.metadata.tables:
        for unique in inspector.get_unique_constraints(table):
            assert unique["name"] and unique["name"].startswith(f"uq_{table}_")
        for foreign in inspector.get_foreign_keys(table):
            assert foreign["name"] and foreign["name"].startswith(f"fk_{table}_")
    engine.dispose()
