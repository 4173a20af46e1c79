"""Contextual triplet loss and the pixel term: zero when satisfied, finite gradients, and learning."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dejavu_ros.training.config import LossSection
from dejavu_ros.training.losses import contextual_triplet_loss, hardest_contrastive, triplet_hinge
from training_support import place_texture, tiny_model


def _unit(*shape, seed=0):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-3)


def test_hinge_is_zero_beyond_the_margin():
    pos, neg = torch.tensor([0.9, 0.6, 0.5]), torch.tensor([0.3, 0.3, 0.3])
    assert torch.allclose(triplet_hinge(pos, neg, 0.5), torch.tensor([0.0, 0.2, 0.3]))


def test_loss_is_zero_when_positives_match_and_negatives_do_not():
    place = _unit(1, 6, 16, 16, seed=1)
    other = _unit(1, 6, 16, 16, seed=2)
    # a = p (identical maps, CX = 1); n0 = n1 another place; CX(a, n) is far below 1 − m
    dense = torch.stack([place, place, place, place, other, other], dim=1)[0][None]
    terms = contextual_triplet_loss(dense, LossSection(cx_stride=2))
    assert terms.cx_pos.item() == pytest.approx(1.0, abs=1e-4)
    assert terms.cx_neg.item() < 0.5
    assert terms.total.item() == 0.0


def test_loss_is_positive_and_gradients_finite_when_violated():
    dense = _unit(2, 6, 4, 16, 16, seed=3).requires_grad_(True)
    terms = contextual_triplet_loss(dense, LossSection(cx_stride=2, beta=1.0, spatial_points=64),
                                    aligned=torch.tensor([True, False]))
    assert terms.total.item() > 0 and terms.spatial.item() > 0
    terms.total.backward()
    assert torch.isfinite(dense.grad).all() and dense.grad.abs().sum() > 0


def test_hardest_contrastive_rewards_matching_pixels():
    cfg = LossSection(spatial_points=128, spatial_radius=2.0, spatial_pos_margin=0.0, spatial_neg_margin=1.0)
    # descriptors that vary strongly with position: identical maps have pos = 0 and far negatives
    ys, xs = torch.meshgrid(torch.linspace(0, 6.28, 24), torch.linspace(0, 6.28, 24), indexing="ij")
    smooth = torch.stack([torch.sin(ys), torch.cos(ys), torch.sin(xs), torch.cos(xs)])[None] / 2 ** 0.5
    gen = torch.Generator().manual_seed(0)
    same = hardest_contrastive(smooth, smooth, cfg, gen)
    shuffled = smooth.flatten(2)[:, :, torch.randperm(576, generator=gen)].reshape_as(smooth)
    assert same.item() < hardest_contrastive(smooth, shuffled, cfg, gen).item()


@pytest.mark.slow
def test_tiny_overfit_lowers_the_loss():
    torch.manual_seed(0)
    model = tiny_model()
    images = []
    for role_place, dark in ((0, False), (0, False), (0, True), (0, True), (1, False), (1, False)):
        im = torch.from_numpy(place_texture(role_place, (128, 128))).permute(2, 0, 1).float() / 255
        images.append(im * (0.3 if dark else 1.0))
    batch = torch.stack(images)[None]  # 1×6×3×128×128
    cfg = LossSection(cx_stride=8)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)  # BN on 6 images: small steps
    losses = []
    for _ in range(30):
        dense = model(batch.flatten(0, 1)).unflatten(0, (1, 6))
        terms = contextual_triplet_loss(dense, cfg)
        opt.zero_grad()
        terms.total.backward()
        opt.step()
        losses.append(terms.total.item())
    # single steps are noisy (batch norm over six images); the trend over the run is not
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.05
