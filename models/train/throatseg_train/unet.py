"""U-Net decoder on the EfficientNet-Lite0 encoder."""

import torch
from torch import nn
import torch.nn.functional as F

from .encoder import Lite0Encoder, SKIP_CHANNELS

DECODER_CHANNELS = (96, 64, 48, 32, 16)


def conv_bn_relu(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    )


class DecoderBlock(nn.Module):
    """Upsample by two (nearest), concatenate the skip, then two 3x3 convolutions."""

    def __init__(self, inputs: int, skip: int, outputs: int):
        super().__init__()
        self.conv1 = conv_bn_relu(inputs + skip, outputs)
        self.conv2 = conv_bn_relu(outputs, outputs)

    def forward(self, x, skip=None):
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class LiteUNet(nn.Module):
    """Return per-class logits (N, C, H, W) at the input resolution."""

    def __init__(self, classes: int, pretrained: bool = True):
        super().__init__()
        self.encoder = Lite0Encoder(pretrained)
        skips = list(reversed(SKIP_CHANNELS))  # 320, 112, 40, 24, 16
        blocks = []
        channels = skips[0]
        for index, outputs in enumerate(DECODER_CHANNELS):
            skip = skips[index + 1] if index + 1 < len(skips) else 0
            blocks.append(DecoderBlock(channels, skip, outputs))
            channels = outputs
        self.decoder = nn.ModuleList(blocks)
        self.head = nn.Conv2d(channels, classes, 3, padding=1)

    def forward(self, x):
        features = self.encoder(x)
        skips = list(reversed(features))
        y = skips[0]
        for index, block in enumerate(self.decoder):
            skip = skips[index + 1] if index + 1 < len(skips) else None
            y = block(y, skip)
        return self.head(y)
