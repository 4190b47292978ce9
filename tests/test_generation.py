"""Generation: exact small-N FID/KID, diffusion prior and diffusers decoder (train, sample, save), the generator API
and its input errors."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import linalg

from matmcl.generation.config import GenerationConfig
from matmcl.generation.data import GeneratorData, random_crops
from matmcl.generation.decoder import DecoderConfig, EmbeddingDecoder
from matmcl.generation.diffusion import (
    TrainSettings,
    guided_sample,
    sampling_scheduler,
    train_denoiser,
    training_scheduler,
)
from matmcl.generation.evaluate import distance_block, mosaic, pearson, pearson_ci95
from matmcl.generation.fid import frechet_distance, kernel_distance
from matmcl.generation.generator import StructureGenerator
from matmcl.generation.prior import DiffusionPrior, PriorConfig
from matmcl.generation.train import without_timings
from matmcl.models.sgpt import SGPTConfig, build_sgpt
from matmcl.schema import CONDITION_COLUMNS
from matmcl.training.data import ConditionScaler

pytestmark = pytest.mark.usefixtures("one_thread")
EMBED = 32
CONDITIONS = pd.DataFrame([[0.5, 16.0, 16.0, 1500.0, 25.0, 45.0], [1.0, 20.0, 20.0, 500.0, 22.0, 40.0]],
                          columns=list(CONDITION_COLUMNS))


def reference_fid(x: np.ndarray, y: np.ndarray) -> float:
    """The textbook formula with scipy's sqrtm (defined when both covariances have full rank)."""
    mu = x.mean(0) - y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = linalg.sqrtm(s1 @ s2).real
    return float(mu @ mu + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


def test_fid_equals_sqrtm_reference_when_n_exceeds_d():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8))
    y = rng.normal(0.5, 1.5, size=(200, 8)) @ rng.normal(size=(8, 8))
    assert frechet_distance(x, y) == pytest.approx(reference_fid(x, y), rel=1e-8)


def test_fid_small_n_is_finite_nonnegative_and_zero_for_identical_sets():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(10, 128)), rng.normal(size=(10, 128))
    value = frechet_distance(x, y)
    assert np.isfinite(value) and value > 0
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(x, x + 3.0) == pytest.approx(128 * 9.0, rel=1e-9)  # a pure mean shift: ‖Δμ‖²


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(2)
    same = kernel_distance(rng.normal(size=(400, 16)), rng.normal(size=(400, 16)))
    different = kernel_distance(rng.normal(size=(400, 16)), rng.normal(1.0, 1.0, size=(400, 16)))
    assert abs(same) < 0.02 < different


@pytest.mark.parametrize(("x", "y", "message"), [
    (np.zeros((1, 4)), np.zeros((5, 4)), "at least 2"),
    (np.zeros((5, 4)), np.zeros((5, 3)), "feature sizes differ"),
    (np.full((5, 4), np.nan), np.zeros((5, 4)), "NaN"),
])
def test_distances_reject_bad_inputs(x, y, message):
    for distance in (frechet_distance, kernel_distance):
        with pytest.raises(ValueError, match=message):
            distance(x, y)


def test_distance_block_separates_materials_and_reports_the_floor():
    rng = np.random.default_rng(3)
    centres = [rng.normal(0, 3, size=16) for _ in range(3)]
    sets = [[c + rng.normal(size=(10, 16)) for c in centres] for _ in range(3)]  # generated, real A, real B
    summary, matrix = distance_block(*sets)
    assert matrix.shape == (3, 3)
    assert summary["fid"]["ratio"] < 0.5 and summary["fid"]["diag_below_row_offdiag"] == 1.0
    assert summary["fid"]["real_floor"] == pytest.approx(summary["fid"]["diag_mean"], rel=0.5)


def test_mosaic_and_pearson():
    crops = np.arange(3 * 2 * 2, dtype=np.uint8).reshape(3, 2, 2)
    tiled = mosaic(crops, 2)
    assert tiled.shape == (4, 4)
    np.testing.assert_array_equal(tiled[:2, 2:], crops[1])
    assert pearson([1, 2, 3, np.nan], [2, 4, 6, 1]) == pytest.approx(1.0)
    assert pearson([1, 2], [1, 2]) is None
    x, y = np.arange(12.0), np.arange(12.0) + 3 * np.r_[1, -1].repeat(6)
    r, half_width = pearson(x, y), 1.959964 / np.sqrt(12 - 3)  # Fisher z by hand
    assert pearson_ci95(x, y) == pytest.approx(np.tanh(np.arctanh(r) + np.array([-half_width, half_width])))
    assert pearson_ci95([1, 2, 3], [1, 3, 2]) is None  # 3 pairs: r exists, Fisher's interval does not


def _train(model, draw, prediction_type, steps=3, seed=0, lr_schedule="constant", warmup_steps=0):
    settings = TrainSettings(steps, 4, 1e-3, 0.0, 1.0, 0.9, 0.5, seed, lr_schedule, warmup_steps)
    torch.manual_seed(seed)
    return train_denoiser(model, draw, training_scheduler(50, prediction_type), settings, torch.device("cpu"),
                          progress=False)


def _prior_draw(g, b):
    return torch.randn(b, EMBED, generator=g), torch.nn.functional.normalize(torch.randn(b, EMBED, generator=g), dim=1)


def _decoder_draw(g, b):
    return torch.rand(b, 1, 16, 16, generator=g) * 2 - 1, torch.randn(b, EMBED, generator=g)


def _tiny_prior():
    torch.manual_seed(0)
    return DiffusionPrior(PriorConfig(embed_dim=EMBED, dim=32, depth=1, heads=2, timesteps=50))


def _tiny_decoder(prediction_type="epsilon", fold_channels=0):
    torch.manual_seed(0)
    return EmbeddingDecoder(DecoderConfig(image_px=16, block_out_channels=(8, 16), attention_head_dim=8,
                                          embed_dim=EMBED, timesteps=50, unshuffle=2,
                                          prediction_type=prediction_type, fold_channels=fold_channels))


def test_prior_trains_and_samples_deterministically_with_guidance_mattering():
    ema, losses, _ = _train(_tiny_prior(), _prior_draw, "sample")
    ema_again, losses_again, _ = _train(_tiny_prior(), _prior_draw, "sample")
    assert len(losses) == 3 and losses == losses_again
    cond = torch.nn.functional.normalize(torch.randn(5, EMBED), dim=1)
    scheduler = sampling_scheduler(training_scheduler(50, "sample"), "ddim")

    def sample(model, guidance, seed=0):
        return guided_sample(model, scheduler, cond, (EMBED,), guidance, 4, torch.Generator().manual_seed(seed),
                             torch.device("cpu"))

    first = sample(ema, 1.0)
    assert first.shape == (5, EMBED) and torch.isfinite(first).all()
    torch.testing.assert_close(first, sample(ema_again, 1.0))
    assert not torch.allclose(first, sample(ema, 0.0))
    assert not torch.allclose(first, sample(ema, 1.0, seed=1))


@pytest.mark.parametrize(("prediction_type", "fold_channels"), [("epsilon", 0), ("v_prediction", 4)])
def test_decoder_trains_samples_and_round_trips_save_pretrained(tmp_path, prediction_type, fold_channels):
    ema, losses, _ = _train(_tiny_decoder(prediction_type, fold_channels), _decoder_draw, prediction_type,
                            lr_schedule="cosine", warmup_steps=1)
    assert all(np.isfinite(losses))
    assert (ema.fold is not None) == bool(fold_channels)
    assert ema.unet.config.in_channels == max(1, fold_channels) * 4
    cond = torch.randn(3, EMBED)
    scheduler = sampling_scheduler(training_scheduler(50, prediction_type), "dpm")
    images = guided_sample(ema, scheduler, cond, (1, 16, 16), 2.0, 3, torch.Generator().manual_seed(0),
                           torch.device("cpu"))
    assert images.shape == (3, 1, 16, 16)
    ema.save_pretrained(tmp_path / "decoder")
    assert (tmp_path / "decoder" / "unet" / "config.json").is_file()
    loaded = EmbeddingDecoder.from_pretrained(tmp_path / "decoder")
    again = guided_sample(loaded, scheduler, cond, (1, 16, 16), 2.0, 3, torch.Generator().manual_seed(0),
                          torch.device("cpu"))
    torch.testing.assert_close(images, again)
    with pytest.raises(ValueError, match="steps"):
        guided_sample(ema, scheduler, cond, (1, 16, 16), 1.0, 0, torch.Generator(), torch.device("cpu"))


def _generator(config: GenerationConfig) -> StructureGenerator:
    torch.manual_seed(0)
    sgpt = build_sgpt(SGPTConfig.tiny(image_size=32, embed_dim=EMBED))
    scaler = ConditionScaler(CONDITIONS.mean().to_numpy(), CONDITIONS.std().to_numpy())
    prior, _, _ = _train(_tiny_prior(), _prior_draw, "sample", steps=1)
    decoder, _, _ = _train(_tiny_decoder(), _decoder_draw, "epsilon", steps=1)
    return StructureGenerator(sgpt, 32, scaler, prior, decoder, config, torch.device("cpu"))


def test_generator_api_shapes_determinism_save_and_errors(tmp_path):
    config = GenerationConfig(prior_sample_steps=3, sample_steps=3, prior_candidates=2)
    gen = _generator(config)
    images = gen.generate(CONDITIONS, n=3, seed=0)
    assert images.shape == (2, 3, 16, 16) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, gen.generate(CONDITIONS, n=3, seed=0))
    assert not np.array_equal(images, gen.generate(CONDITIONS, n=3, guidance=0.0, seed=0))
    structures = gen.structure_embeddings(gen.condition_embeddings(CONDITIONS), 4)
    assert structures.shape == (2, 4, EMBED)
    torch.testing.assert_close(structures.norm(dim=-1), torch.ones(2, 4))
    gen.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"prior", "decoder", "generation_config.json"}
    with pytest.raises(ValueError, match="missing condition column"):
        gen.generate(CONDITIONS.drop(columns=["voltage_kv"]))
    with pytest.raises(ValueError, match="at least one image"):
        gen.generate(CONDITIONS, n=0)
    with pytest.raises(ValueError, match="guidance"):
        gen.generate(CONDITIONS, guidance=-1.0)


def test_generator_data_batches_and_crops():
    g = torch.Generator().manual_seed(0)
    pixels = torch.arange(4 * 32 * 32, dtype=torch.int64).reshape(4, 1, 32, 32).to(torch.uint8)
    crops = random_crops(pixels, 16, g)
    assert crops.shape == (4, 1, 16, 16) and crops.dtype == torch.uint8
    with pytest.raises(ValueError, match="exceeds"):
        random_crops(pixels, 64, g)
    data = GeneratorData(pd.DataFrame({"film_id": ["a", "b"]}), torch.randn(2, EMBED), torch.randn(4, EMBED),
                         torch.tensor([0, 0, 1, 1]), torch.arange(4), pixels)
    images, cond = data.decoder_batch(g, 5, 16)
    assert images.shape == (5, 1, 16, 16) and images.min() >= -1 and images.max() <= 1 and cond.shape == (5, EMBED)
    assert data.film_embeddings().shape == (2, EMBED)


@pytest.mark.parametrize(("values", "message"), [
    ({"scheduler": "euler"}, "scheduler"),
    ({"image_px": 60}, "divisible"),
    ({"prior_cond_drop": 1.0}, "prior_cond_drop"),
    ({"images_per_film": 1}, "images_per_film"),
    ({"decoder_prediction": "sample"}, "decoder_prediction"),
    ({"decoder_lr_schedule": "linear"}, "decoder_lr_schedule"),
    ({"decoder_warmup_fraction": 1.0}, "decoder_warmup_fraction"),
    ({"fold_channels": -1}, "fold_channels"),
])
def test_config_rejects_bad_values(values, message):
    with pytest.raises(ValueError, match=message):
        GenerationConfig(**values)


def test_generate_cli_rejects_bad_arguments_before_loading_models(tmp_path):
    import argparse

    from matmcl.generate_cli import add_generate_arguments, cmd_generate

    parser = argparse.ArgumentParser()
    add_generate_arguments(parser)
    for argv, message in ((["-n", "0"], "-n must be >= 1"), (["--steps", "0"], "--steps must be >= 1")):
        args = parser.parse_args(argv)
        args.params, args.profile, args.workspace = tmp_path / "params.yaml", None, tmp_path
        with pytest.raises(ValueError, match=message):
            cmd_generate(args)
    args = parser.parse_args(["--voltage-kv", "16", "-n", "2", "--out", str(tmp_path / "grid.png")])
    assert args.voltage_kv == 16.0 and args.n_images == 2 and args.guidance is None


def test_model_folder_training_record_has_no_wall_times():
    metrics = {"decoder": {"steps": 3, "seconds_per_step": 0.1}, "decoder_train_seconds": 0.3, "n_films": 2}
    assert without_timings(metrics) == {"decoder": {"steps": 3}, "n_films": 2}


def test_choose_films_draws_seen_and_unseen_and_needs_an_unseen_film():
    from matmcl.generation.evaluate import choose_films

    splits = pd.DataFrame({"film_id": [f"F{i}" for i in range(8)],
                           "split": ["train"] * 5 + ["test"] * 3, "generation": [False] * 6 + [True] * 2})
    config = GenerationConfig(eval_seen_films=3, eval_unseen_films=5)
    films = choose_films(splits, config)
    assert len(films["seen"]) == 3 and set(films["seen"]) <= {f"F{i}" for i in range(5)}
    assert films["unseen"] == ["F6", "F7"] and films == choose_films(splits, config)
    with pytest.raises(ValueError, match="generation set"):
        choose_films(splits.assign(generation=False), config)
