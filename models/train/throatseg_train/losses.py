"""Cross-entropy plus soft Dice, background included."""

import torch
import torch.nn.functional as F


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Return 1 - soft Dice, averaged over samples and classes.

    Softmax probabilities, squared terms in the denominator, per sample and class.
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
    """Return cross-entropy plus soft Dice loss."""
    return F.cross_entropy(logits, target) + soft_dice_loss(logits, target)
