"""render_plot: SVG structure per kind, bands, outliers, determinism, errors."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from service.plots import (
    PLOT_KINDS,
    PlotRunsMismatchError,
    PlotsUnavailableError,
    UnknownPlotKindError,
    render_plot,
)
from service.plots.common import params_opt, power_of_ten, tokens_opt
from service.scaling import (
    Chinchilla,
    Constraints,
    DataConstrained,
    FitResult,
    Frontier,
    Kaplan,
    RunArrays,
    fit,
    optimum_at_flops,
    preset,
)
from service.scaling.runs import budget_labels
from tests.plots.plots_svg import (
    BUDGETS,
    OUTLIER_ROW,
    SIZES,
    TRUTH,
    element,
    gids,
    n_markers,
    parse,
    sweep,
    text_of,
)

N_BUDGETS = len(BUDGETS)


def test_kinds() -> None:
    assert PLOT_KINDS == ("isoflop", "frontier", "residuals")


def test_isoflop_parametric_draws_points_curve_and_optimum_per_budget(
    runs: RunArrays, parametric: FitResult
) -> None:
    root = parse(render_plot("isoflop", parametric, runs))
    assert gids(root, r"budget-\d+") == [f"budget-{k}" for k in range(N_BUDGETS)]
    assert gids(root, r"budget-\d+-curve") == [f"budget-{k}-curve" for k in range(N_BUDGETS)]
    assert [n_markers(root, f"budget-{k}") for k in range(N_BUDGETS)] == [SIZES] * N_BUDGETS
    assert n_markers(root, "optimum") == N_BUDGETS
    title = text_of(root, "title")
    assert "Chinchilla law" in title
    assert "parametric" in title
    legend = "".join(root.itertext())
    assert "1e18 FLOPs" in legend
    assert "3e19 FLOPs" in legend
    assert "loss (nats/token)" in legend
    assert "parameters N (count)" in legend


def test_isoflop_method_draws_parabolas_and_the_frontier(
    runs: RunArrays, isoflop: FitResult
) -> None:
    assert len(isoflop.budgets) == N_BUDGETS
    root = parse(render_plot("isoflop", isoflop, runs))
    assert len(gids(root, r"budget-\d+-curve")) == N_BUDGETS
    assert n_markers(root, "optimum") == N_BUDGETS
    element(root, "frontier-line")
    title = text_of(root, "title")
    assert "Power-law frontier" in title
    assert "isoflop" in title


def test_isoflop_budget_the_fit_skipped_has_points_but_no_curve() -> None:
    full = sweep()
    # Keep only 2 sizes of the smallest budget: no parabola there, so the fit skips it.
    keep = np.r_[0, SIZES - 1, SIZES : len(full)]
    runs = full.take(keep)
    res = fit(runs, method="isoflop", holdout=False)
    assert len(res.budgets) == N_BUDGETS - 1
    root = parse(render_plot("isoflop", res, runs))
    assert len(gids(root, r"budget-\d+")) == N_BUDGETS
    assert n_markers(root, "budget-0") == 2
    assert gids(root, r"budget-\d+-curve") == [f"budget-{k}-curve" for k in range(1, N_BUDGETS)]
    assert "no fitted curve" in "".join(root.itertext())
    residuals = parse(render_plot("residuals", res, runs))
    assert n_markers(residuals, "runs") == len(runs) - 2
    assert "2 run(s) without a prediction" in text_of(residuals, "not-shown")


def test_frontier_without_bootstrap_has_no_band(runs: RunArrays, parametric: FitResult) -> None:
    assert parametric.samples.shape[0] == 0
    root = parse(render_plot("frontier", parametric, runs))
    assert gids(root, r"band-.*") == []
    assert gids(root, r"fit-.*") == ["fit-params", "fit-tokens"]
    assert n_markers(root, "runs-params") == len(runs)
    assert n_markers(root, "runs-tokens") == len(runs)
    assert gids(root, r"optimum-.*") == []  # parametric fits have no per-budget minima
    text = "".join(root.itertext())
    assert "training compute C = 6ND (FLOPs)" in text
    assert "training tokens D (count)" in text
    assert f"N_opt ∝ C^{parametric.estimates['a']:.3f}" in text


def test_frontier_with_bootstrap_has_bands(
    runs: RunArrays, parametric_boot: FitResult, isoflop: FitResult
) -> None:
    for res in (parametric_boot, isoflop):
        assert res.samples.shape[0] > 0
        root = parse(render_plot("frontier", res, runs))
        assert gids(root, r"band-.*") == ["band-params", "band-tokens"]
        assert f"({res.samples.shape[0]} resamples)" in "".join(root.itertext())
    root = parse(render_plot("frontier", isoflop, runs))
    assert n_markers(root, "optimum-params") == N_BUDGETS


def test_residuals_highlight_outliers() -> None:
    runs = sweep(outlier=True)
    res = fit(runs, method="parametric", holdout=False)
    assert OUTLIER_ROW in res.outliers
    root = parse(render_plot("residuals", res, runs))
    assert n_markers(root, "outlier") == len(res.outliers)
    assert n_markers(root, "runs") == len(runs)
    element(root, "zero")
    assert f"outliers, robust |z| > 4 ({len(res.outliers)})" in "".join(root.itertext())


def test_residuals_without_outliers_mark_none(runs: RunArrays, parametric: FitResult) -> None:
    assert parametric.outliers == ()
    root = parse(render_plot("residuals", parametric, runs))
    assert gids(root, "outlier") == []
    assert n_markers(root, "runs") == len(runs)
    assert "log(predicted / observed loss)" in "".join(root.itertext())


def test_same_input_same_bytes_also_across_threads(
    runs: RunArrays, parametric_boot: FitResult
) -> None:
    serial = [render_plot(k, parametric_boot, runs) for k in PLOT_KINDS]
    assert serial == [render_plot(k, parametric_boot, runs) for k in PLOT_KINDS]
    with ThreadPoolExecutor(max_workers=3) as pool:
        threaded = list(pool.map(lambda k: render_plot(k, parametric_boot, runs), PLOT_KINDS * 2))
    assert threaded == serial * 2
    assert b"<dc:date>" not in serial[0]


def test_different_fits_give_different_documents(
    runs: RunArrays, parametric: FitResult, isoflop: FitResult
) -> None:
    assert render_plot("frontier", parametric, runs) != render_plot("frontier", isoflop, runs)


def test_unknown_kind_is_a_typed_error_listing_the_kinds(
    runs: RunArrays, parametric: FitResult
) -> None:
    with pytest.raises(UnknownPlotKindError) as err:
        render_plot("loss-curves", parametric, runs)
    assert err.value.status_code == 404
    assert err.value.details == {"kind": "loss-curves", "known": list(PLOT_KINDS)}
    for kind in PLOT_KINDS:
        assert kind in err.value.message


def test_runs_other_than_the_fits_are_refused(runs: RunArrays, parametric: FitResult) -> None:
    with pytest.raises(PlotRunsMismatchError) as err:
        render_plot("residuals", parametric, runs.take(np.arange(len(runs) - 1)))
    assert err.value.status_code == 409
    assert err.value.details == {"got": len(runs) - 1, "n_runs": len(runs)}


def test_missing_matplotlib_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, runs: RunArrays, parametric: FitResult
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(PlotsUnavailableError) as err:
        render_plot("isoflop", parametric, runs)
    assert "pip install 'scaling-service[plots]'" in err.value.message
    assert err.value.status_code == 501


def test_epoch_data_every_run_drawn_once_per_plot(epoch_runs: RunArrays) -> None:
    res = fit(epoch_runs, method="parametric", holdout=False)
    n_groups = int(budget_labels(epoch_runs).max()) + 1
    iso = parse(render_plot("isoflop", res, epoch_runs))
    # Figure 4's runs have no nominal budgets: clustered with a bounded spread they make 62
    # groups, too many series to draw, so every run is in one scatter coloured by compute.
    assert n_groups == 62
    assert gids(iso, r"budget-\d+") == []
    assert n_markers(iso, "runs") == len(epoch_runs)
    resid = parse(render_plot("residuals", res, epoch_runs))
    assert n_markers(resid, "runs") == len(epoch_runs)
    assert n_markers(resid, "outlier") == len(res.outliers) > 0
    front = parse(render_plot("frontier", res, epoch_runs))
    assert n_markers(front, "runs-params") == len(epoch_runs)


def test_loss_curves_envelope_fit_renders_every_kind() -> None:
    sizes = np.geomspace(5e7, 2e10, 8)
    N = np.repeat(sizes, 30)
    D = np.tile(np.geomspace(1e9, 2e12, 30), sizes.size)
    rid = np.repeat(np.arange(sizes.size), 30)
    runs = RunArrays.from_arrays(N, D, TRUTH.predict(N, D), run_id=rid)
    res = fit(runs, method="envelope", holdout=False)
    iso = parse(render_plot("isoflop", res, runs))
    # Points on loss curves are not IsoFLOP budgets: one scatter coloured by compute.
    assert gids(iso, r"budget-\d+") == []
    assert n_markers(iso, "runs") == len(runs)
    element(iso, "frontier-line")
    assert "envelope" in text_of(iso, "title")
    resid = parse(render_plot("residuals", res, runs))
    assert "frontier loss" in "".join(resid.itertext())
    assert n_markers(resid, "runs") == len(runs)
    parse(render_plot("frontier", res, runs))


def test_kaplan_fit_renders_with_its_name() -> None:
    truth = Kaplan(N_c=8.8e13, D_c=5.4e13, alpha_N=0.076, alpha_D=0.095)
    N = np.geomspace(1e7, 1e10, 12)
    NN, DD = (a.ravel() for a in np.meshgrid(N, np.geomspace(1e9, 1e11, 6)))
    runs = RunArrays.from_arrays(NN, DD, truth.predict(NN, DD))
    res = fit(runs, law="kaplan", holdout=False)
    for kind in PLOT_KINDS:
        assert "Kaplan law" in text_of(parse(render_plot(kind, res, runs)), "title")


@pytest.mark.parametrize(
    "law",
    [
        TRUTH,
        Chinchilla(E=1.8, A=482.0, B=2085.0, alpha=0.35, beta=0.37),
        Kaplan(N_c=8.8e13, D_c=5.4e13, alpha_N=0.076, alpha_D=0.095),
    ],
)
def test_compute_optimal_sizes_match_the_core(law: Chinchilla | Kaplan) -> None:
    C = np.array([1e19, 1e22, 1e25])
    want = [optimum_at_flops(law, float(c), Constraints()).params for c in C]
    np.testing.assert_allclose(params_opt(law, C), want, rtol=1e-5)
    np.testing.assert_allclose(tokens_opt(law, C), C / (6.0 * np.array(want)), rtol=1e-5)


def test_frontier_sizes_are_its_power_laws() -> None:
    f = Frontier(k_N=0.1, a=0.5, k_D=1.7, b=0.5, k_L=30.0, gamma=0.05)
    np.testing.assert_allclose(params_opt(f, np.array([1e20])), [0.1 * 1e10])
    np.testing.assert_allclose(tokens_opt(f, np.array([1e20])), [1.7 * 1e10])


def test_tick_labels() -> None:
    assert power_of_ten(1e18) == "10¹⁸"
    assert power_of_ten(2e-3) == "2×10⁻³"
    assert power_of_ten(5e9) == "5×10⁹"
    assert power_of_ten(0.0) == ""


def test_data_constrained_curves_use_each_budgets_unique_tokens() -> None:
    truth = preset("muennighoff-2023").law
    assert isinstance(truth, DataConstrained)
    base = sweep(noise=0.0)
    U = np.full(len(base), 2e9)  # small corpus: the larger budgets repeat data
    L = truth.predict(base.params, base.tokens, unique_tokens=U)
    runs = RunArrays.from_arrays(base.params, base.tokens, L, unique_tokens=U)
    assert np.any(runs.tokens > U)
    res = FitResult(
        law=truth,
        method="parametric",
        n_runs=len(runs),
        huber_delta=1e-3,
        objective=0.0,
        iterations=0,
        converged=True,
        rmse_log_loss=0.0,
        extrapolation_error=None,
        max_flops=float(runs.flops.max()),
    )
    iso = parse(render_plot("isoflop", res, runs))
    assert len(gids(iso, r"budget-\d+-curve")) == N_BUDGETS
    assert n_markers(iso, "optimum") == N_BUDGETS
    assert "Data-constrained law" in text_of(iso, "title")
    front = parse(render_plot("frontier", res, runs))
    assert "(no data repetition)" in "".join(front.itertext())
    resid = parse(render_plot("residuals", res, runs))
    assert n_markers(resid, "runs") == len(runs)
    assert gids(resid, "rmse") == []  # a perfect fit has no RMSE band


@pytest.mark.parametrize("kind", PLOT_KINDS)
def test_plots_have_no_empty_band_at_any_edge(
    kind: str, runs: RunArrays, parametric_boot: FitResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each figure, saved as a PNG the way the SVG is saved, has ink within a few pixels of
    every edge (before: 14-16 blank pixels at the right and bottom at 100 dpi)."""
    import io

    import matplotlib.image

    from service.plots import common, frontier, isoflop, residuals

    for module in (isoflop, frontier, residuals):
        monkeypatch.setattr(module, "to_svg", lambda fig: common.save_figure(fig, "png"))
    png = render_plot(kind, parametric_boot, runs)
    pixels = np.asarray(matplotlib.image.imread(io.BytesIO(png)), dtype=np.float64)
    ink = np.any(pixels[:, :, :3] < 0.97, axis=2)
    rows, cols = np.where(np.any(ink, axis=1))[0], np.where(np.any(ink, axis=0))[0]
    height, width = ink.shape
    margins = {
        "left": cols.min(),
        "right": width - 1 - cols.max(),
        "top": rows.min(),
        "bottom": height - 1 - rows.max(),
    }
    assert max(margins.values()) <= 8, margins
