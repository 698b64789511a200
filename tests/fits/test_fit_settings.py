"""Fit settings: one typed model from the request to the stored row to the runs a fit reads."""

from service.fits.data import selection
from service.schemas.fits import FitCreate, FitSettings
from service.schemas.runs import RunFilter, RunSelection


def test_a_request_s_settings_are_stored_as_before() -> None:
    body = FitCreate.model_validate(
        {"law": "kaplan", "bootstrap": 5, "filters": {"params_min": 1e6}}
    )

    stored = body.settings().stored()

    assert stored == {
        "huber_delta": 1e-3,
        "bootstrap": 5,
        "seed": 0,
        "budget_tol": 0.1,
        "include_excluded": False,
        "include_mid_schedule": False,
        "filters": {
            "flops_min": None,
            "flops_max": None,
            "params_min": 1e6,
            "params_max": None,
            "tokens_min": None,
            "tokens_max": None,
            "source": None,
        },
    }
    assert FitSettings.model_validate(stored) == body.settings()


def test_a_fit_reads_included_runs_unless_asked_for_all() -> None:
    narrowed = FitSettings(filters=RunSelection(params_min=1e9, source="sweep"))

    assert selection(narrowed) == RunFilter(params_min=1e9, source="sweep", excluded=False)
    assert selection(FitSettings(include_excluded=True)) == RunFilter()


def test_settings_stored_before_provenance_existed_read_as_valid_points_only() -> None:
    old = {"huber_delta": 1e-3, "bootstrap": 0, "seed": 0, "budget_tol": 0.1}

    assert FitSettings.model_validate(old).include_mid_schedule is False
