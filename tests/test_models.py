"""Tests of the SGPT encoders, the multimodal NT-Xent loss, the property head and model folders."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from matmcl.models.contrastive import multimodal_nt_xent, nt_xent
from matmcl.models.fusion import CrossAttentionFusion, CrossAttentionFusionConfig
from matmcl.models.heads import PropertyHead, PropertyHeadConfig, PropertyRegressor
from matmcl.models.mlp import TableMLPConfig
from matmcl.models.resnet import CNNEncoder, CNNEncoderConfig, ResNetConfig
from matmcl.models.sgpt import FUSED, SGPTConfig, SGPTModel, build_sgpt, count_parameters
from matmcl.models.transformer import Attention
from matmcl.models.vit import ViT, ViTConfig

STYLES = ("mlp_cnn", "transformer")
IMAGE_PX = 32
N_CONDITIONS = 7


pytestmark = pytest.mark.usefixtures("one_thread")


def unit(rows: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(rows, dim, generator=generator), dim=-1)


def random_batch(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    table = torch.randn(n, N_CONDITIONS, generator=g)
    return {"table": table, "image": torch.rand(n, 1, IMAGE_PX, IMAGE_PX, generator=g)}


# ---------------------------------------------------------------- loss


def hand_nt_xent(u: np.ndarray, f: np.ndarray, tau: float) -> float:
    """NT-Xent written out with loops: mean over the 2B anchors of −log(positive / all others)."""
    z = np.concatenate([u, f])
    n, b = len(z), len(u)
    terms = []
    for i in range(n):
        positive = (i + b) % n
        denominator = sum(math.exp(z[i] @ z[k] / tau) for k in range(n) if k != i)
        terms.append(-math.log(math.exp(z[i] @ z[positive] / tau) / denominator))
    return sum(terms) / n


def test_multimodal_nt_xent_matches_hand_computation():
    g = torch.Generator().manual_seed(0)
    emb = {"table": unit(3, 4, g), "image": unit(3, 4, g), "fused": unit(3, 4, g)}
    total, parts = multimodal_nt_xent(emb, anchor="fused", temperature=0.1)
    as_np = {k: v.double().numpy() for k, v in emb.items()}
    expected = {k: hand_nt_xent(as_np[k], as_np["fused"], 0.1) for k in ("table", "image")}
    assert set(parts) == {"table", "image"}
    for name, value in expected.items():
        assert parts[name].item() == pytest.approx(value, rel=1e-5)
    assert total.item() == pytest.approx(sum(expected.values()), rel=1e-5)


def test_aligned_embeddings_give_lower_loss_than_shuffled():
    g = torch.Generator().manual_seed(1)
    f = unit(16, 8, g)
    shuffled = f[torch.roll(torch.arange(16), 1)]
    assert nt_xent(f, f).item() < 0.1 < nt_xent(shuffled, f).item()


def test_loss_needs_the_anchor():
    g = torch.Generator().manual_seed(2)
    with pytest.raises(KeyError, match="fused"):
        multimodal_nt_xent({"table": unit(2, 4, g), "image": unit(2, 4, g)})


# ---------------------------------------------------------------- encoders


@pytest.mark.parametrize("style", STYLES)
def test_sgpt_embeddings_have_right_shapes_and_unit_norm(style):
    config = SGPTConfig.tiny(style, image_size=IMAGE_PX)
    model = build_sgpt(config).eval()
    batch = random_batch(5)
    with torch.no_grad():
        out = model(batch)
        assert set(out) == {"table", "image", FUSED}
        for z in out.values():
            assert z.shape == (5, config.embed_dim)
            torch.testing.assert_close(z.norm(dim=-1), torch.ones(5))
        for name, encoder in model.encoders.items():
            assert encoder(batch[name]).shape == (5, config.embed_dim)
        assert model.fusion(batch["table"], batch["image"]).shape == (5, config.embed_dim)
        torch.testing.assert_close(model.embed_fused(batch["table"], batch["image"]), out[FUSED])
        torch.testing.assert_close(model.embed_table(batch["table"]), out["table"])


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_resnet_encoder_block_types(block):
    resnet = ResNetConfig(block=block, layers=(1, 2), width=8, feature_dim=24)
    encoder = CNNEncoder(CNNEncoderConfig(resnet=resnet, hidden_dims=(16,), out_dim=12)).eval()
    assert encoder(torch.rand(2, 1, 48, 48)).shape == (2, 12)
    expansion = 4 if block == "bottleneck" else 1
    assert encoder.backbone.fc.in_features == 16 * expansion


def test_vit_rejects_wrong_image_size():
    vit = ViT(ViTConfig(image_size=32, patch_size=8, dim=16, depth=1, n_heads=2, out_dim=8))
    assert vit(torch.rand(2, 1, 32, 32)).shape == (2, 8)
    with pytest.raises(ValueError, match="32×32"):
        vit(torch.rand(2, 1, 40, 40))


def test_extra_unimodal_encoder_joins_forward_and_loss():
    descriptor = TableMLPConfig(in_dim=5, hidden_dims=(16,), out_dim=32)
    config = dataclasses.replace(SGPTConfig.tiny(), extra_modalities={"descriptor": descriptor})
    model = build_sgpt(config)
    batch = random_batch(4) | {"descriptor": torch.randn(4, 5)}
    total, parts = multimodal_nt_xent(model(batch))
    assert set(parts) == {"table", "image", "descriptor"}
    torch.testing.assert_close(total, sum(parts.values()))


def test_paper_mlp_cnn_has_about_51m_parameters():
    with torch.device("meta"):
        model = build_sgpt(SGPTConfig.paper("mlp_cnn"))
    assert 50e6 < count_parameters(model) < 52e6


# ---------------------------------------------------------------- cross-attention fusion


@pytest.fixture
def fusion() -> CrossAttentionFusion:
    torch.manual_seed(0)
    config = CrossAttentionFusionConfig(image_size=IMAGE_PX, dim=16, depth=2, n_heads=2, out_dim=8)
    return CrossAttentionFusion(config).eval()


def test_fusion_output_of_a_sample_ignores_the_rest_of_the_batch(fusion):
    batch, other = random_batch(4, seed=0), random_batch(4, seed=1)
    with torch.no_grad():
        alone = fusion(batch["table"][:1], batch["image"][:1])
        together = fusion(batch["table"], batch["image"])[:1]
        mixed_table = torch.cat([batch["table"][:1], other["table"][1:]])
        mixed_image = torch.cat([batch["image"][:1], other["image"][1:]])
        mixed = fusion(mixed_table, mixed_image)[:1]
    torch.testing.assert_close(together, alone)
    torch.testing.assert_close(mixed, alone)


def test_fusion_is_a_set_function_of_its_tokens(fusion):
    """The [CLS] read-out is unchanged when the condition tokens or the patch tokens (which already carry their
    feature identity / position) are fed in another order: attention is order-free. Together with the next test
    (the read-out depends on every token) this rules out a causal mask, which with [CLS] first would hide every
    other token from the read-out and with [CLS] last would make the read-out order-dependent."""
    batch = random_batch(3)
    with torch.no_grad():
        table_tokens, image_tokens = fusion.tokens(batch["table"], batch["image"])
        reference = fusion.fuse(table_tokens, image_tokens)
        t_perm = torch.randperm(table_tokens.shape[1], generator=torch.Generator().manual_seed(0))
        v_perm = torch.randperm(image_tokens.shape[1], generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(fusion.fuse(table_tokens[:, t_perm], image_tokens), reference)
        torch.testing.assert_close(fusion.fuse(table_tokens, image_tokens[:, v_perm]), reference)
        torch.testing.assert_close(fusion.fuse(table_tokens[:, t_perm], image_tokens[:, v_perm]), reference)


def test_fusion_output_depends_on_every_condition_and_every_patch(fusion):
    batch = random_batch(1)
    table = batch["table"].requires_grad_(True)
    image = batch["image"].requires_grad_(True)
    fusion(table, image).sum().backward()
    assert (table.grad.abs() > 0).all()
    patch = fusion.config.patch_size
    per_patch = image.grad.abs().unfold(2, patch, patch).unfold(3, patch, patch).sum(dim=(-1, -2))
    assert (per_patch > 0).all()


def test_attention_first_query_sees_the_last_key():
    torch.manual_seed(0)
    attention = Attention(dim=8, n_heads=2, dropout=0.0)
    x = torch.randn(1, 5, 8)
    changed = x.clone()
    changed[:, -1] += 1.0
    assert not torch.allclose(attention(x)[:, 0], attention(changed)[:, 0])


# ---------------------------------------------------------------- saving, training, heads


@pytest.mark.parametrize("style", STYLES)
def test_save_and_load_roundtrip_gives_identical_outputs(style, tmp_path):
    torch.manual_seed(0)
    descriptor = TableMLPConfig(in_dim=3, hidden_dims=(8,), out_dim=32)
    config = dataclasses.replace(SGPTConfig.tiny(style), extra_modalities={"descriptor": descriptor})
    model = build_sgpt(config).eval()
    model.save_pretrained(tmp_path / "sgpt")
    assert sorted(p.name for p in (tmp_path / "sgpt").iterdir()) == ["config.json", "model.pt"]
    loaded = SGPTModel.from_pretrained(tmp_path / "sgpt")
    assert loaded.config == config
    batch = random_batch(3) | {"descriptor": torch.randn(3, 3)}
    with torch.no_grad():
        expected, actual = model(batch), loaded(batch)
    assert set(actual) == set(expected)
    for name in expected:
        assert torch.equal(actual[name], expected[name])


def test_from_pretrained_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        SGPTModel.from_pretrained(tmp_path)


@pytest.mark.parametrize("style", STYLES)
def test_short_sgpt_training_reduces_the_loss(style):
    """Images are a fixed function of two conditions; 20 full-batch steps bring the loss from its collapsed start
    to below chance level, 2·log(2n − 1) for two modalities (what any embedding that ignores its input scores)."""
    torch.manual_seed(0)
    n = 32
    table = torch.randn(n, N_CONDITIONS)
    rows = torch.linspace(-1, 1, IMAGE_PX)
    stripes = torch.sin(torch.pi * (2 + table[:, :1, None]) * rows[None, :, None])  # frequency from condition 0
    tilt = table[:, 1:2, None] * rows[None, None, :]  # horizontal gradient from condition 1
    image = (stripes + tilt).unsqueeze(1) + 0.05 * torch.randn(n, 1, IMAGE_PX, IMAGE_PX)
    batch = {"table": table, "image": image}
    model = build_sgpt(SGPTConfig.tiny(style, image_size=IMAGE_PX))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def evaluate() -> float:
        model.eval()
        with torch.no_grad():
            return multimodal_nt_xent(model(batch))[0].item()

    before = evaluate()
    model.train()
    for _ in range(20):
        loss, _ = multimodal_nt_xent(model(batch))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = evaluate()
    chance = 2 * math.log(2 * n - 1)
    assert after < 0.8 * before, (before, after)
    assert after < 0.95 * chance, (after, chance)


def test_frozen_regressor_trains_only_the_head():
    torch.manual_seed(0)
    model = build_sgpt(SGPTConfig.tiny())
    head = PropertyHead(PropertyHeadConfig(in_dim=32, n_props=4))
    regressor = PropertyRegressor(model.embedder("table"), head, freeze=True).train()
    assert not model.encoders["table"].training and head.training
    x = torch.randn(6, N_CONDITIONS)
    prediction = regressor(x)
    assert prediction.shape == (6, 4)
    prediction.sum().backward()
    assert all(p.grad is None for p in model.encoders["table"].parameters())
    assert all(p.grad is not None for p in head.parameters())
    assert count_parameters(regressor, trainable_only=True) == count_parameters(head)


def test_fused_regressor_takes_both_inputs():
    model = build_sgpt(SGPTConfig.tiny("transformer"))
    regressor = PropertyRegressor(model.embedder(FUSED), PropertyHead(PropertyHeadConfig(in_dim=32, n_props=2)))
    batch = random_batch(3)
    assert regressor(batch["table"], batch["image"]).shape == (3, 2)


def test_paper_head_layout():
    layers = [m for m in PropertyHead(PropertyHeadConfig(n_props=5)).net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in layers] == [(128, 128), (128, 128), (128, 5)]


def test_config_from_partial_dict_keeps_defaults_and_rejects_unknown_keys():
    data = {"style": "transformer", "vit": {"depth": 2}, "extra_modalities": {"descriptor": {"in_dim": 3}}}
    config = SGPTConfig.from_dict(data)
    assert config.vit == ViTConfig(depth=2)
    assert config.extra_modalities == {"descriptor": TableMLPConfig(in_dim=3)}
    assert config.cnn.resnet.layers == (1, 1, 1, 1)
    with pytest.raises(ValueError, match="depht"):
        SGPTConfig.from_dict({"vit": {"depht": 2}})
    with pytest.raises(ValueError, match="style"):
        SGPTConfig(style="cnn")
