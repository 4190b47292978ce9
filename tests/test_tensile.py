"""Tensile curve synthesis (matmcl.lab.tensile_curves) and property extraction (matmcl.tensile)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matmcl.lab.tensile_curves import (
    LoggerConfig,
    SpecimenScatter,
    build_curve,
    draw_specimen,
    log_curve,
    make_feasible,
)
from matmcl.tensile import (
    PROPERTY_COLUMNS,
    STRAIN_COLUMN,
    STRESS_COLUMN,
    CurveError,
    extract_properties,
    read_curve,
    summarize_replicates,
)

N_SPECIMENS = 200
NOISY_TOLERANCE = 0.02
NOISE_FREE_TOLERANCE = 0.005
NOISE_FREE = LoggerConfig(stress_noise_fraction=0.0, strain_jitter_pct=0.0)

# Ranges of electrospun mats and their composites
MODULUS_RANGE = (10.0, 1500.0)
STRENGTH_RANGE = (1.0, 80.0)
YIELD_RATIO_RANGE = (0.25, 0.9)
ELONGATION_RANGE = (5.0, 250.0)
YIELD_STRAIN_RANGE = (0.01, 0.10)  # σy / E
SHARPNESS_RANGE = (0.2, 0.8)


def targets(modulus: float, yield_strength: float, strength: float, elongation: float) -> dict[str, float]:
    return {
        "elastic_modulus_mpa": modulus,
        "yield_strength_mpa": yield_strength,
        "fracture_strength_mpa": strength,
        "elongation_at_break_pct": elongation,
    }


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def random_expected(rng: np.random.Generator) -> dict[str, float]:
    """Expected film properties drawn across the ranges above, kept to feasible combinations (rejection)."""
    while True:
        modulus = _log_uniform(rng, *MODULUS_RANGE)
        yield_strength = modulus * _log_uniform(rng, *YIELD_STRAIN_RANGE)
        strength = yield_strength / rng.uniform(*YIELD_RATIO_RANGE)
        expected = targets(modulus, yield_strength, strength, _log_uniform(rng, *ELONGATION_RANGE))
        if STRENGTH_RANGE[0] <= strength <= STRENGTH_RANGE[1] and make_feasible(expected) == expected:
            return expected


def relative_errors(logger: LoggerConfig, seed: int) -> pd.DataFrame:
    """|extracted / true - 1| per property for N_SPECIMENS random specimens logged with `logger`."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(N_SPECIMENS):
        specimen = draw_specimen(random_expected(rng), rng, knee_sharpness=rng.uniform(*SHARPNESS_RANGE))
        curve = log_curve(specimen, rng, logger)
        extracted = extract_properties(curve[STRAIN_COLUMN], curve[STRESS_COLUMN])
        truth = specimen.properties()
        rows.append({name: abs(extracted[name] / truth[name] - 1) for name in PROPERTY_COLUMNS})
    return pd.DataFrame(rows)


def test_noisy_curves_give_back_specimen_properties() -> None:
    median = relative_errors(LoggerConfig(), seed=1).median()
    print("median relative error, noisy curves:", {k: f"{v:.3%}" for k, v in median.items()})
    assert (median <= NOISY_TOLERANCE).all(), median


def test_noise_free_curves_give_back_specimen_properties() -> None:
    errors = relative_errors(NOISE_FREE, seed=2)
    print("median relative error, noise-free curves:", {k: f"{v:.4%}" for k, v in errors.median().items()})
    assert (errors.median() <= NOISE_FREE_TOLERANCE).all(), errors.median()
    assert (errors.quantile(0.9) <= NOISE_FREE_TOLERANCE).all(), errors.quantile(0.9)


@pytest.mark.parametrize("sharpness", [0.0, 0.5, 1.0])
def test_dense_ideal_curve_is_exact(sharpness: float) -> None:
    curve = build_curve(300.0, 9.0, 20.0, 60.0, knee_sharpness=sharpness)
    strain = np.linspace(0.0, 60.0, 120_001)
    stress = curve.stress(strain)
    extracted = extract_properties(np.append(strain, 60.1), np.append(stress, 0.0))
    truth = curve.properties()
    assert truth["elastic_modulus_mpa"] == 300.0 and truth["elongation_at_break_pct"] == 60.0
    for name in PROPERTY_COLUMNS:
        assert extracted[name] == pytest.approx(truth[name], rel=1e-5), name


def test_curve_shape() -> None:
    curve = build_curve(300.0, 9.0, 20.0, 60.0)
    stress = curve.stress(np.linspace(0.0, 60.0, 6001))
    assert stress[0] == 0.0 and stress[-1] == pytest.approx(20.0)
    assert np.all(np.diff(stress) > 0)
    assert np.all(np.diff(stress, 2) <= 1e-9)  # concave: elastic, knee, hardening
    assert 0 < curve.tangent_modulus_mpa < curve.elastic_modulus_mpa
    logged = log_curve(curve, np.random.default_rng(0), NOISE_FREE)
    assert logged[STRAIN_COLUMN].diff().iloc[1:-4].between(0.0999, 0.1001).all()  # logger grid of 0.1 %
    peak = int(logged[STRESS_COLUMN].to_numpy().argmax())
    assert logged[STRAIN_COLUMN].iloc[peak] == 60.0  # the break point itself is logged
    assert len(logged) - peak - 1 == len(LoggerConfig().fracture_tail)
    assert logged[STRESS_COLUMN].iloc[-1] < 0.1 * logged[STRESS_COLUMN].max()


def test_infeasible_targets() -> None:
    # yield at 4 % strain, then tripled strength 1 % later: no concave curve
    with pytest.raises(ValueError, match="no concave curve"):
        build_curve(100.0, 3.0, 12.0, 5.0)
    with pytest.raises(ValueError, match="σy < σf"):
        build_curve(100.0, 12.0, 10.0, 50.0)
    feasible = make_feasible(targets(100.0, 3.0, 12.0, 5.0))
    assert feasible["elongation_at_break_pct"] > 5.0
    build_curve(**feasible)


def test_specimen_scatter() -> None:
    rng = np.random.default_rng(3)
    expected = targets(200.0, 6.0, 15.0, 80.0)
    specimens = pd.DataFrame([draw_specimen(expected, rng).properties() for _ in range(1000)])
    scatter = SpecimenScatter()
    cv = specimens.std() / specimens.mean()
    for name, target in [
        ("elastic_modulus_mpa", scatter.modulus_cv),
        ("fracture_strength_mpa", scatter.strength_cv),
        ("elongation_at_break_pct", scatter.elongation_cv),
    ]:
        assert cv[name] == pytest.approx(target, rel=0.15), name
        assert specimens[name].mean() == pytest.approx(expected[name], rel=0.01), name
    assert (specimens["yield_strength_mpa"] < specimens["fracture_strength_mpa"]).all()


def test_same_seed_same_curve() -> None:
    expected = targets(50.0, 2.0, 6.0, 150.0)

    def specimen_curve(seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        return log_curve(draw_specimen(expected, rng), rng)

    pd.testing.assert_frame_equal(specimen_curve(7), specimen_curve(7))
    assert not specimen_curve(7).equals(specimen_curve(8))


@pytest.fixture
def good_curve() -> pd.DataFrame:
    return log_curve(build_curve(300.0, 9.0, 20.0, 60.0), np.random.default_rng(0))


def test_too_few_points() -> None:
    with pytest.raises(CurveError, match="too few points"):
        extract_properties(np.arange(10.0), np.r_[np.arange(9.0), 0.0])


def test_non_numeric_and_nan(good_curve: pd.DataFrame) -> None:
    strain = good_curve[STRAIN_COLUMN].to_numpy()
    stress = good_curve[STRESS_COLUMN].to_numpy().copy()
    with pytest.raises(CurveError, match="non-numeric"):
        extract_properties(strain.astype(object).tolist()[:-1] + ["x"], stress)
    stress[100] = np.nan
    with pytest.raises(CurveError, match="NaN or infinite value at point 100"):
        extract_properties(strain, stress)


def test_non_monotonic_strain(good_curve: pd.DataFrame) -> None:
    strain = good_curve[STRAIN_COLUMN].to_numpy().copy()
    strain[200:220] = strain[200:220][::-1]
    with pytest.raises(CurveError, match="strain is not monotonic"):
        extract_properties(strain, good_curve[STRESS_COLUMN])


def test_jitter_is_not_a_reversal(good_curve: pd.DataFrame) -> None:
    strain = good_curve[STRAIN_COLUMN].to_numpy().copy()
    strain[300] -= 0.04  # a small step back (less than half a logger step) is tolerated as noise
    extract_properties(strain, good_curve[STRESS_COLUMN])


def test_never_fractures(good_curve: pd.DataFrame) -> None:
    unbroken = good_curve.iloc[: -len(LoggerConfig().fracture_tail)]
    with pytest.raises(CurveError, match="never fractures"):
        extract_properties(unbroken[STRAIN_COLUMN], unbroken[STRESS_COLUMN])


def test_no_yield() -> None:
    strain = np.arange(0.0, 5.05, 0.1)
    stress = np.r_[100.0 * strain[:-3] / 100, 0.2, 0.1, 0.0]  # linear to fracture: brittle
    with pytest.raises(CurveError, match="no yield"):
        extract_properties(strain, stress)


def test_read_curve(tmp_path, good_curve: pd.DataFrame) -> None:
    path = tmp_path / "longitudinal_r0.csv"
    good_curve.to_csv(path, index=False)
    read = read_curve(path)
    pd.testing.assert_frame_equal(read, good_curve, rtol=1e-12)


def test_read_curve_bad_column(tmp_path) -> None:
    path = tmp_path / "transverse_r1.csv"
    path.write_text("strain_pct,stres_mpa\n0,0\n0.1,0.3\n")
    with pytest.raises(CurveError, match=r"transverse_r1\.csv: missing column\(s\) \['stress_mpa'\]"):
        read_curve(path)


def test_read_curve_bad_cell(tmp_path) -> None:
    path = tmp_path / "transverse_r2.csv"
    path.write_text("strain_pct,stress_mpa\n0,0\n0.1,0.3\n0.2,abc\n")
    with pytest.raises(CurveError, match=r"transverse_r2\.csv: row 3 \(line 4\): non-numeric stress_mpa value 'abc'"):
        read_curve(path)
    path.write_text("strain_pct,stress_mpa\n0,0\n,0.3\n")
    with pytest.raises(CurveError, match=r"row 2 \(line 3\): non-numeric strain_pct value ''"):
        read_curve(path)


def test_summarize_replicates() -> None:
    per_curve = pd.DataFrame(
        {
            "composite_id": ["c1", "c1", "c1", "c1", "c2"],
            "film_id": ["f1"] * 4 + ["f2"],
            "direction": ["longitudinal", "longitudinal", "longitudinal", "transverse", "longitudinal"],
            "replicate": [0, 1, 2, 0, 0],
            "fracture_strength_mpa": [10.0, 12.0, 14.0, 5.0, 7.0],
            "yield_strength_mpa": [4.0, 4.0, 4.0, 2.0, 3.0],
            "elastic_modulus_mpa": [100.0, 110.0, 120.0, 40.0, 70.0],
            "tangent_modulus_mpa": [9.0, 10.0, 11.0, 3.0, 6.0],
            "elongation_at_break_pct": [50.0, 60.0, 100.0, 30.0, 80.0],
        }
    )
    summary = summarize_replicates(per_curve, ["composite_id", "film_id"])
    assert list(summary.columns[:3]) == ["composite_id", "film_id", "direction"]
    assert list(summary["n_replicates"]) == [3, 1, 1]
    first = summary.iloc[0]
    assert first["fracture_strength_mpa"] == pytest.approx(12.0)
    assert first["fracture_strength_mpa_sd"] == pytest.approx(2.0)
    assert first["yield_strength_mpa_sd"] == 0.0
    assert first["elastic_modulus_mpa_sd"] == pytest.approx(10.0)
    assert first["elongation_at_break_pct"] == pytest.approx(70.0)
    assert first["elongation_at_break_pct_sd"] == pytest.approx(np.sqrt(700.0))  # deviations -20, -10, 30
    assert np.isnan(summary.iloc[1]["fracture_strength_mpa_sd"])
    films = summarize_replicates(per_curve.drop(columns="composite_id").iloc[:4], "film_id")
    assert list(films["tangent_modulus_mpa"]) == [10.0, 3.0]


def test_summarize_replicates_rejects_bad_tables() -> None:
    per_curve = pd.DataFrame(
        {"film_id": ["f1", "f1"], "direction": ["transverse"] * 2, "replicate": [0, 0]}
        | {name: [1.0, 2.0] for name in PROPERTY_COLUMNS}
    )
    with pytest.raises(ValueError, match="replicate listed twice"):
        summarize_replicates(per_curve, "film_id")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['composite_id'\]"):
        summarize_replicates(per_curve, "composite_id")
