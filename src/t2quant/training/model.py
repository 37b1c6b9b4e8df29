"""The compact 2D U-Net (PyTorch; training and export only, from the ``train`` extra)."""

from __future__ import annotations

import torch
from torch import nn

from t2quant.segmentation.network import N_CLASSES

__all__ = ["WIDTHS", "UNet"]

WIDTHS = (16, 32, 48, 64, 96)  # channels per level: 495k parameters


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """Two 3x3 convolutions, each with batch norm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net with max-pool down, bilinear up and skip concatenation.

    Input ``(N, 1, H, W)`` with H and W multiples of ``2 ** (len(widths) - 1)``; output
    logits ``(N, n_classes, H, W)``.
    """

    def __init__(self, widths: tuple[int, ...] = WIDTHS, n_classes: int = N_CLASSES):
        super().__init__()
        self.widths = widths
        self.down = nn.ModuleList()
        c = 1
        for w in widths:
            self.down.append(conv_block(c, w))
            c = w
        self.up = nn.ModuleList(
            conv_block(widths[i + 1] + widths[i], widths[i])
            for i in reversed(range(len(widths) - 1))
        )
        self.head = nn.Conv2d(widths[0], n_classes, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a batch of normalised slices."""
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = nn.functional.interpolate(
                x, size=skip.shape[-2:], mode="bilinear", align_corners=False
            )
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)
