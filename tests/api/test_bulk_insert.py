"""The bulk insert under the batch endpoint (PostgreSQL: COPY through a staging table)."""

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from service.db import create_db_engine, make_session_factory, session_scope
from service.store.bulk import RUNS, insert_runs
from service.store.models import Experiment


def _row(key: str | None, loss: float) -> dict[str, Any]:
    return {
        "run_key": key,
        "params": 1e8,
        "tokens": 2e9,
        "flops": 1.2e18,
        "flops_derived": True,
        "loss": loss,
        "unique_tokens": None,
        "seed": None,
        "hyperparameters": '{"lr": 0.001, "note": "tab\\there, back\\\\slash"}',
        "metadata": "{}",
        "source": "api",
        "body_hash": "0" * 64,
        "loss_provenance": "after_cooldown",
        "cooldown_fraction": 0.2,
        "trunk_key": "trunk\tone",
        "curve_points": 0,
    }


def test_two_inserts_in_one_transaction_store_each_row_once(database_url: str) -> None:
    engine = create_db_engine(database_url)
    sessions = make_session_factory(engine)
    now = datetime.now(UTC)
    with session_scope(sessions) as session:
        experiment = Experiment(name="bulk", param_convention="total", flops_formula="6ND")
        session.add(experiment)
        session.flush()
        first = insert_runs(session, experiment.id, now, [_row("a", 3.0), _row(None, 3.1)])
        # "a" again is skipped; the staging rows of the first call are not inserted twice.
        second = insert_runs(session, experiment.id, now, [_row("a", 3.0), _row("b", 3.2)])
        # A stored key between new ones: on SQLite the skipped row leaves a gap in the ids, and
        # both new rows must still come back.
        third = insert_runs(
            session, experiment.id, now, [_row("0", 3.3), _row("a", 3.0), _row("c", 3.4)]
        )
    assert [key for _, key in first] == ["a", None]
    assert first[0][0] < first[1][0]  # ids follow the rows' order
    assert [key for _, key in second] == ["b"]
    assert len(third) == 2 and {key for _, key in third} == {"0", "c"}
    with engine.connect() as connection:
        stored = connection.execute(
            sa.select(RUNS.c.id, RUNS.c.run_key, RUNS.c.loss, RUNS.c.hyperparameters).order_by(
                RUNS.c.id
            )
        ).all()
        provenance = connection.execute(
            sa.select(RUNS.c.loss_provenance, RUNS.c.cooldown_fraction, RUNS.c.trunk_key)
        ).all()
    engine.dispose()
    assert [(key, loss) for _, key, loss, _ in stored] == [
        ("a", 3.0),
        (None, 3.1),
        ("b", 3.2),
        ("0", 3.3),
        ("c", 3.4),
    ]
    assert stored[0][3] == {"lr": 0.001, "note": "tab\there, back\\slash"}
    assert set(provenance) == {("after_cooldown", 0.2, "trunk\tone")}
    assert set(third) == {(run_id, key) for run_id, key, _, _ in stored if key in {"0", "c"}}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_new_keys_go_straight_in_and_a_stored_key_undoes_only_that_copy(database_url: str) -> None:
    """PostgreSQL: a batch of new keys is copied into runs with ids drawn beforehand (no
    staging table); one stored key fails that COPY, its savepoint undoes the rows it had
    copied, and the staging insert stores the new rows once."""
    engine = create_db_engine(database_url)
    sessions = make_session_factory(engine)
    now = datetime.now(UTC)
    staging = sa.text("SELECT to_regclass('pg_temp.runs_incoming') IS NOT NULL")
    with session_scope(sessions) as session:
        experiment = Experiment(name="copy", param_convention="total", flops_formula="6ND")
        session.add(experiment)
        session.flush()
        rows = [_row("a", 3.0), _row(None, 3.1), _row("b", 3.2)]
        first = insert_runs(session, experiment.id, now, rows)
        assert not session.execute(staging).scalar_one()
        second = insert_runs(session, experiment.id, now, [_row("c", 3.3), _row("a", 3.0)])
        assert session.execute(staging).scalar_one()
    with engine.connect() as connection:
        stored = connection.execute(
            sa.select(RUNS.c.id, RUNS.c.run_key, RUNS.c.loss).order_by(RUNS.c.id)
        ).all()
    engine.dispose()
    assert [key for _, key in first] == ["a", None, "b"]
    assert [key for _, key in second] == ["c"]
    assert [(run_id, key) for run_id, key, _ in stored] == first + second
    assert [loss for _, _, loss in stored] == [3.0, 3.1, 3.2, 3.3]
