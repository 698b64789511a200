"""Points of one training trunk (cooldown branches) are correlated: bootstraps resample whole
trunks, and the envelope reads every valid point, several per trunk."""

from __future__ import annotations

import numpy as np
import pytest

from service.scaling import RunArrays, fit, preset
from service.scaling.laws import Chinchilla
from service.scaling.runs import resample_groups


def _trunks(
    *, sizes: int = 10, branches: int = 6, trunk_sd: float = 0.03, seed: int = 1
) -> tuple[RunArrays, RunArrays]:
    """Cooldown branches of one trunk per size, at token counts 20N/8 .. 20N*8: every branch of
    a trunk shares the trunk's noise (its data order, its initialisation), plus a little of its
    own. The same rows without and with their trunk labels."""
    truth = preset("chinchilla-2022").law
    assert isinstance(truth, Chinchilla)
    rng = np.random.default_rng(seed)
    N, D, noise, trunk = [], [], [], []
    for k, n in enumerate(np.geomspace(3e7, 3e9, sizes)):
        shared = rng.normal(0.0, trunk_sd)
        for d in np.geomspace(20 * n / 8, 20 * n * 8, branches):
            N.append(n)
            D.append(d)
            noise.append(shared + rng.normal(0.0, 0.002))
            trunk.append(k)
    N_a, D_a = np.array(N), np.array(D)
    L = truth.predict(N_a, D_a) * np.exp(noise)
    return RunArrays(N_a, D_a, L), RunArrays(N_a, D_a, L, groups=trunk)


def test_resampled_counts_are_whole_trunks() -> None:
    units = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])
    counts = resample_groups(units, np.random.default_rng(0), 500)

    assert counts.shape == (500, units.size)
    for u in range(4):
        members = counts[:, units == u]
        assert (members == members[:, :1]).all()  # a trunk is drawn whole or not at all
    drawn = np.stack([counts[:, np.flatnonzero(units == u)[0]] for u in range(4)], axis=1)
    assert (drawn.sum(axis=1) == 4).all()  # as many trunks drawn as there are
    assert (drawn == 0).any() and (drawn >= 2).any()  # with replacement


def test_resampling_units_fall_back_to_rows_when_every_row_is_its_own() -> None:
    plain, grouped = _trunks(sizes=3, branches=2)

    assert plain.resampling_units() is None
    assert RunArrays(
        plain.params, plain.tokens, plain.loss, groups=range(6)
    ).resampling_units() is (None)
    assert grouped.resampling_units() is not None
    assert grouped.take([0, 1, 4]).groups is not None  # labels travel with the rows


def test_trunk_bootstrap_widens_what_trunks_share_and_keeps_the_estimate() -> None:
    plain, grouped = _trunks()

    naive = fit(plain, bootstrap=100, seed=0, holdout=False)
    by_trunk = fit(grouped, bootstrap=100, seed=0, holdout=False)

    assert by_trunk.law == naive.law  # grouping changes the intervals, never the fit
    width = {name: hi - lo for name, (lo, hi) in naive.intervals().items()}
    trunk_width = {name: hi - lo for name, (lo, hi) in by_trunk.intervals().items()}
    # The trunk noise moves every point of a size together: the point bootstrap counts six
    # points per size as six independent measurements of the size effect, the trunk bootstrap
    # as one. Its interval of alpha (and so of a) is much wider.
    assert trunk_width["alpha"] > 1.5 * width["alpha"]
    assert trunk_width["a"] > 1.3 * width["a"]


@pytest.mark.parametrize("bootstrap", [0, 20])
def test_envelope_over_cooldown_branches_of_trunks(bootstrap: int) -> None:
    truth = preset("chinchilla-2022").law
    assert isinstance(truth, Chinchilla)
    N, D, trunk = [], [], []
    for k, n in enumerate(np.geomspace(5e7, 2e10, 14)):
        for d in np.geomspace(1e9, 2e12, 12):  # one trunk per size, 12 cooldown branches
            N.append(n)
            D.append(d)
            trunk.append(k)
    N_a, D_a = np.array(N), np.array(D)
    runs = RunArrays(N_a, D_a, truth.predict(N_a, D_a), groups=trunk)

    res = fit(runs, method="envelope", bootstrap=bootstrap, seed=0)

    assert res.law.values()[1] == pytest.approx(truth.a, abs=0.06)
    assert res.samples.shape[0] == bootstrap
