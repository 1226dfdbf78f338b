"""Losses of METHOD.md: DC (cross-entropy plus soft Dice) and the CQG loss."""

from typing import NamedTuple

import torch
import torch.nn.functional as F

# λ1, λ2, λ3 of METHOD.md: DC on the geometric view, DC on the photometric view, MSE.
CQG_WEIGHTS = (0.3, 0.7, 1.0)


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Return 1 - soft Dice, averaged over samples and classes.

    Softmax probabilities, squared terms in the denominator, per sample and class,
    background included: Dice = (2·Σ p·g + eps) / (Σ p² + Σ g² + eps).
    """
    classes = logits.shape[1]
    probs = logits.softmax(dim=1)
    onehot = F.one_hot(target, classes).permute(0, 3, 1, 2).to(probs.dtype)
    dims = (2, 3)
    intersection = (probs * onehot).sum(dims)
    denominator = (probs * probs).sum(dims) + (onehot * onehot).sum(dims)
    dice = (2 * intersection + eps) / (denominator + eps)
    return 1 - dice.mean()


def ce_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return DC: mean pixel cross-entropy plus soft Dice loss."""
    return F.cross_entropy(logits, target) + soft_dice_loss(logits, target)


class CQGLoss(NamedTuple):
    """The CQG loss and its three unweighted terms."""

    total: torch.Tensor
    dc_geometric: torch.Tensor
    dc_photometric: torch.Tensor
    consistency: torch.Tensor


def cqg_loss(logits1: torch.Tensor, logits2: torch.Tensor, target: torch.Tensor,
             weights=CQG_WEIGHTS) -> CQGLoss:
    """Return the CQG loss λ1·DC(y, y1) + λ2·DC(y, y2) + λ3·MSE(y1, y2).

    `logits1` come from the geometric view x1, `logits2` from the photometric view
    x2 = photometric(x1), and both share the mask `target`. The MSE is the mean over
    all logit elements, and neither side is detached, so gradients reach both branches.
    """
    dc1 = ce_dice_loss(logits1, target)
    dc2 = ce_dice_loss(logits2, target)
    consistency = F.mse_loss(logits1, logits2)
    total = weights[0] * dc1 + weights[1] * dc2 + weights[2] * consistency
    return CQGLoss(total, dc1, dc2, consistency)
