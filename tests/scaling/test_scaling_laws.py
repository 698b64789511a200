from __future__ import annotations

import json

import numpy as np
import pytest

from service.scaling import (
    PRESETS,
    Chinchilla,
    DataConstrained,
    Kaplan,
    UnknownNameError,
    law_from_json,
    preset,
)


def test_chinchilla_predicts_its_formula() -> None:
    law = Chinchilla(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
    N, D = np.array([1e9, 7e10]), np.array([2e10, 1.4e12])
    expected = 1.69 + 406.4 / N**0.34 + 410.7 / D**0.28
    np.testing.assert_allclose(law.predict(N, D), expected, rtol=1e-12)
    assert law.a + law.b == pytest.approx(1.0)


def test_kaplan_predicts_its_formula() -> None:
    law = Kaplan(N_c=6.4e13, D_c=1.8e13, alpha_N=0.076, alpha_D=0.103)
    N, D = np.array([1e8, 1e9]), np.array([1e10, 1e11])
    expected = ((6.4e13 / N) ** (0.076 / 0.103) + 1.8e13 / D) ** 0.103
    np.testing.assert_allclose(law.predict(N, D), expected, rtol=1e-12)


def test_data_constrained_without_repetition_is_chinchilla_below_n_opt() -> None:
    dc = preset("muennighoff-2023").law
    assert isinstance(dc, DataConstrained)
    N, D = np.array([1e8, 5e8]), np.array([1e11, 3e11])  # small models, ample data
    np.testing.assert_allclose(dc.predict(N, D, unique_tokens=D), dc.base.predict(N, D), rtol=1e-12)


def test_repeated_data_is_worth_less_than_fresh_data() -> None:
    dc = preset("muennighoff-2023").law
    N, D = 1e9, 1e11
    fresh = (
        float(dc.predict(N, D, unique_tokens=D)[0])
        if np.ndim(dc.predict(N, D, unique_tokens=D))
        else float(dc.predict(N, D, unique_tokens=D))
    )
    repeated = [float(dc.predict(N, D, unique_tokens=D / epochs)) for epochs in (2, 4, 16, 64)]
    assert fresh < repeated[0] < repeated[1] < repeated[2] < repeated[3]
    # Few epochs are almost as good as fresh data (Muennighoff et al.: ~4 epochs).
    assert repeated[1] - fresh < 0.02


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_json(name: str) -> None:
    law = preset(name).law
    data = json.loads(json.dumps(law.to_json()))
    assert set(law.param_names) <= set(data)
    assert law_from_json(data) == law
    assert np.all(law.predict(np.array([1e9]), np.array([2e10])) > 1.0)


def test_json_names_parameters_as_documented() -> None:
    assert Chinchilla.param_names == ("E", "A", "B", "alpha", "beta")
    assert Kaplan.param_names == ("N_c", "D_c", "alpha_N", "alpha_D")
    assert DataConstrained.param_names[-2:] == ("R_D_star", "R_N_star")


def test_unknown_names_raise_typed_errors() -> None:
    with pytest.raises(UnknownNameError) as exc:
        preset("gpt-5")
    assert exc.value.details["kind"] == "preset"
    with pytest.raises(UnknownNameError):
        law_from_json({"law": "nonsense"})
