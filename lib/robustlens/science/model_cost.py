"""What a network costs: parameters and multiply-accumulates of one forward pass."""

from __future__ import annotations

import torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs (2 x multiply-accumulates) of the convs and linear layers in one forward pass of one
    image of shape ``input_shape`` (C, H, W), counted by hooks on a real forward pass, so
    dynamic networks count every branch they run. BatchNorm, ReLU, pooling and the per-channel
    scales are left out: they are elementwise, a few percent of a conv net's work.
    """
    macs = 0

    def conv_hook(m: nn.Conv2d, inputs, output):
        nonlocal macs
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        macs += output[0].numel() * k

    def linear_hook(m: nn.Linear, inputs, output):
        nonlocal macs
        macs += m.in_features * m.out_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return 2 * macs
