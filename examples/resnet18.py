"""Your own model file, as a lab would write it: ResNet-18 (He et al. 2016) in plain PyTorch.

A study reads it as a ``module`` model (docs/datasets.md, "Your own vision models")::

    [[models]]
    name = "our_resnet"
    kind = "module"
    [models.options]
    source = "examples/resnet18.py"
    factory = "resnet18"
    weights = "weights/ours.safetensors"     # torch.save(state_dict) or safetensors
    layers = ["layer1", "layer2", "layer3", "layer4", "avgpool"]

Module names follow torchvision's (``conv1``, ``layer1`` … ``layer4``, ``avgpool``, ``fc``), so
torchvision's ResNet-18 state dicts fit it. The tests and ``benchmarks/bench_vision.py`` use it
with random weights.
"""

from __future__ import annotations

from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = (64, 128, 256, 512)
        c_in = 64
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(c_in, width, stride),
                                                          BasicBlock(width, width)))  # fmt: skip
            c_in = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def resnet18(num_classes: int = 1000) -> ResNet18:
    return ResNet18(num_classes)
