"""One migration chain: empty -> head -> base, and no drift from the ORM models, on each backend."""

from collections.abc import Iterator
from datetime import UTC, datetime
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


def _insert_experiment(connection: sa.Connection, name: str) -> int:
    experiments = Base.metadata.tables["experiments"]
    now = datetime.now(UTC)
    values = {
        "name": name,
        "description": "",
        "param_convention": "total",
        "flops_formula": "6ND",
        "metadata": {},
        "created_at": now,
        "updated_at": now,
        "data_version": 0,
    }
    result = connection.execute(experiments.insert().values(**values))
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def test_ids_are_never_reused_after_deletion(empty_url: str) -> None:
    command.upgrade(alembic_config(empty_url), "head")
    engine = sa.create_engine(empty_url)
    experiments = Base.metadata.tables["experiments"]
    with engine.begin() as connection:
        first = _insert_experiment(connection, "a")
        second = _insert_experiment(connection, "b")
        connection.execute(experiments.delete().where(experiments.c.id == second))
        third = _insert_experiment(connection, "c")
    engine.dispose()
    assert first < second < third


def test_upgrading_sqlite_to_autoincrement_keeps_rows_ids_and_constraints(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = alembic_config(url)
    command.upgrade(config, "0004")
    engine = sa.create_engine(url)
    experiments = Base.metadata.tables["experiments"]
    fits = Base.metadata.tables["fits"]
    fit_row = {
        "law": "chinchilla",
        "method": "huber",
        "trigger": "refit",
        "status": "queued",
        "settings": {},
        "code_version": "x",
        "progress": 0.0,
        "not_before": datetime.now(UTC),
        "created_at": datetime.now(UTC),
    }
    with engine.begin() as connection:
        ids = [_insert_experiment(connection, name) for name in ("a", "b", "c")]
        connection.execute(fits.insert().values(experiment_id=ids[0], **fit_row))
        # The largest id is deleted before the upgrade: the old table would hand it out again.
        connection.execute(experiments.delete().where(experiments.c.id == ids[2]))
    engine.dispose()

    command.upgrade(config, "head")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        names = connection.execute(sa.select(experiments.c.id, experiments.c.name)).all()
        assert sorted(names) == [(ids[0], "a"), (ids[1], "b")]
        # Checks and the partial unique index survive the rebuild.
        with pytest.raises(sa.exc.IntegrityError), connection.begin_nested():
            connection.execute(fits.insert().values(experiment_id=ids[0], **fit_row))
        with pytest.raises(sa.exc.IntegrityError), connection.begin_nested():
            connection.execute(
                fits.insert().values(experiment_id=ids[0], **{**fit_row, "status": "bogus"})
            )
        new = _insert_experiment(connection, "d")
        deleted_again = _insert_experiment(connection, "e")
        connection.execute(experiments.delete().where(experiments.c.id == deleted_again))
        assert _insert_experiment(connection, "f") > deleted_again > new > ids[1]
    engine.dispose()
    command.downgrade(config, "0004")
    command.upgrade(config, "head")


def test_upgrade_to_provenance_keeps_old_runs_as_end_of_schedule(empty_url: str) -> None:
    config = alembic_config(empty_url)
    command.upgrade(config, "0006")
    engine = sa.create_engine(empty_url)
    # The tables as they were at 0006, so the insert names only the columns that existed.
    old = sa.MetaData()
    runs = sa.Table("runs", old, autoload_with=engine)
    jobs = sa.Table("jobs", old, autoload_with=engine)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        experiment = _insert_experiment(connection, "old")
        inserted = connection.execute(
            runs.insert().values(
                experiment_id=experiment,
                run_key="r1",
                params=1e8,
                tokens=2e9,
                flops=1.2e18,
                flops_derived=True,
                loss=3.0,
                hyperparameters={},
                metadata={},
                source="api",
                body_hash="h",
                excluded=False,
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key
        assert inserted is not None
        run_id = inserted[0]
        job_values = {"status": "succeeded", "origin": "request", "params": 1e8, "tokens": 2e9}
        connection.execute(
            jobs.insert().values(
                experiment_id=experiment,
                flops=1.2e18,
                config={},
                attempts=1,
                max_attempts=3,
                cancel_requested=False,
                progress=1.0,
                log_tail="",
                result_run_id=run_id,
                created_at=now,
                updated_at=now,
                **job_values,
            )
        )
    engine.dispose()

    command.upgrade(config, "head")
    engine = sa.create_engine(empty_url)
    runs_now = Base.metadata.tables["runs"]
    with engine.begin() as connection:
        row = connection.execute(sa.select(runs_now).where(runs_now.c.id == run_id)).one()
        assert (row.run_key, row.loss) == ("r1", 3.0)
        assert (row.loss_provenance, row.cooldown_fraction, row.trunk_key, row.curve_points) == (
            "end_of_schedule",
            None,
            None,
            0,
        )
        # Rebuilding runs on SQLite did not cascade into the jobs that point at them.
        linked = connection.execute(sa.text("SELECT result_run_id FROM jobs")).scalar_one()
        assert linked == run_id
        copy = {k: v for k, v in row._mapping.items() if k != "id"}
        for bad in (
            {"loss_provenance": "halfway"},
            {"loss_provenance": "after_cooldown"},  # without its fraction
            {"cooldown_fraction": 0.2},  # a fraction on an end_of_schedule run
        ):
            with pytest.raises(sa.exc.IntegrityError), connection.begin_nested():
                connection.execute(runs_now.insert().values({**copy, "run_key": "r2", **bad}))
    engine.dispose()
    command.downgrade(config, "0006")
    engine = sa.create_engine(empty_url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT run_key FROM runs")).scalar_one() == "r1"
    engine.dispose()
