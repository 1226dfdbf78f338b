"""Tests of DC (cross-entropy plus soft Dice) and the CQG loss against hand computations."""

import math

import pytest
import torch

from throatseg_train.losses import CQG_WEIGHTS, ce_dice_loss, cqg_loss, soft_dice_loss

LN3 = math.log(3.0)


def small_case():
    """A 1x2x2x2 case: logits of class 1 minus class 0 are ln3, 0, 0, -ln3.

    Softmax gives p1 = [[0.75, 0.5], [0.5, 0.25]] and p0 = 1 - p1. The target is
    class 1 in the top row and class 0 in the bottom row.
    """
    logits = torch.tensor([[[[0.0, 0.0], [0.0, 0.0]],
                            [[LN3, 0.0], [0.0, -LN3]]]], dtype=torch.float64)
    target = torch.tensor([[[1, 1], [0, 0]]])
    return logits, target


def test_soft_dice_matches_hand_computation():
    logits, target = small_case()
    # Class 1: Σp·g = 0.75 + 0.5 = 1.25, Σp² = 0.5625 + 0.25 + 0.25 + 0.0625 = 1.125, Σg² = 2.
    dice1 = 2 * 1.25 / (1.125 + 2)
    # Class 0: p0 = [[0.25, 0.5], [0.5, 0.75]], the target's bottom row: the same numbers.
    dice0 = 2 * (0.5 + 0.75) / ((0.0625 + 0.25 + 0.25 + 0.5625) + 2)
    assert dice1 == pytest.approx(0.8)
    assert dice0 == pytest.approx(0.8)
    expected = 1 - (dice0 + dice1) / 2
    assert soft_dice_loss(logits, target).item() == pytest.approx(expected, abs=1e-6)


def test_ce_dice_matches_hand_computation():
    logits, target = small_case()
    # Probability of the true class per pixel: 0.75, 0.5 (top row), 0.5, 0.75 (bottom row).
    cross_entropy = -(math.log(0.75) + math.log(0.5) + math.log(0.5) + math.log(0.75)) / 4
    assert ce_dice_loss(logits, target).item() == pytest.approx(cross_entropy + 0.2, abs=1e-6)


def test_cqg_total_matches_hand_computation():
    logits1, target = small_case()
    logits2 = torch.zeros_like(logits1)
    dc1 = -(2 * math.log(0.75) + 2 * math.log(0.5)) / 4 + 0.2
    # All-zero logits: p = 0.5 everywhere, CE = ln 2, Dice per class = 2·1 / (1 + 2) = 2/3.
    dc2 = math.log(2) + (1 - 2 / 3)
    # MSE over the 8 logit elements: only two are non-zero (±ln3).
    mse = 2 * LN3 ** 2 / 8
    terms = cqg_loss(logits1, logits2, target)
    assert terms.dc_geometric.item() == pytest.approx(dc1, abs=1e-6)
    assert terms.dc_photometric.item() == pytest.approx(dc2, abs=1e-6)
    assert terms.consistency.item() == pytest.approx(mse, abs=1e-9)
    assert CQG_WEIGHTS == (0.3, 0.7, 1.0)
    assert terms.total.item() == pytest.approx(0.3 * dc1 + 0.7 * dc2 + 1.0 * mse, abs=1e-6)


def test_consistency_is_zero_for_equal_logits():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 5, generator=generator)
    target = torch.randint(0, 3, (2, 4, 5), generator=generator)
    terms = cqg_loss(logits, logits.clone(), target)
    assert terms.consistency.item() == 0.0
    assert terms.dc_geometric.item() == pytest.approx(terms.dc_photometric.item())


def test_gradients_reach_both_branches():
    generator = torch.Generator().manual_seed(0)
    logits1 = torch.randn(2, 3, 4, 5, generator=generator, requires_grad=True)
    logits2 = torch.randn(2, 3, 4, 5, generator=generator, requires_grad=True)
    target = torch.randint(0, 3, (2, 4, 5), generator=generator)
    cqg_loss(logits1, logits2, target).total.backward()
    assert logits1.grad is not None
    assert logits2.grad is not None
    assert logits1.grad.abs().sum() > 0
    assert logits2.grad.abs().sum() > 0


def test_consistency_gradient_is_symmetric():
    """With only λ3 set, the MSE pulls the two branches towards each other equally."""
    generator = torch.Generator().manual_seed(1)
    logits1 = torch.randn(1, 2, 3, 3, generator=generator, requires_grad=True)
    logits2 = torch.randn(1, 2, 3, 3, generator=generator, requires_grad=True)
    target = torch.zeros(1, 3, 3, dtype=torch.long)
    cqg_loss(logits1, logits2, target, weights=(0.0, 0.0, 1.0)).total.backward()
    expected = 2 * (logits1 - logits2).detach() / logits1.numel()
    assert torch.allclose(logits1.grad, expected)
    assert torch.allclose(logits2.grad, -expected)
