"""Editing stored runs: excluding and including them; a change makes the fits stale."""

from sqlalchemy.orm import Session

from service.fits.service import FitPolicy, runs_changed
from service.store import runs as run_store
from service.store.models import Run


def set_excluded(
    session: Session, run_id: int, excluded: bool, reason: str | None, policy: FitPolicy
) -> Run:
    """Exclude (with a reason) or include run ``run_id``; the experiment's fits go stale (and
    refit, debounced) only when that changed the run."""
    run = run_store.get(session, run_id)
    if run_store.set_excluded(session, run, excluded, reason):
        runs_changed(session, run.experiment, policy)
    session.flush()
    return run
