"""--separable: depthwise + pointwise pairs that compute exactly what a conv with rank-1 per-channel kernels
does, start from the best such approximation otherwise, and make a GAN generator's run smaller and loadable."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import aigc
from aigc.errors import AigcError
from aigc.generation.requests import LatentImageRequest
from aigc.optimize.pipeline import Plan, optimize
from aigc.optimize.separable import make_separable
from helpers import train_tiny


@pytest.mark.parametrize("kind", [nn.Conv2d, nn.ConvTranspose2d])
def test_a_conv_whose_kernels_are_separable_is_reproduced_exactly(kind):
    torch.manual_seed(0)
    layer = kind(4, 6, 3, stride=2, padding=1)
    with torch.no_grad():  # W[o, c] = p[o, c] d[c]: exactly what a depthwise + pointwise pair computes
        pointwise, depthwise = torch.randn(6, 4), torch.randn(4, 3, 3)
        kernel = pointwise[:, :, None, None] * depthwise[None]  # [out, in, k, k]
        layer.weight.copy_(kernel if kind is nn.Conv2d else kernel.transpose(0, 1))
    network = nn.Sequential(layer)
    x = torch.randn(2, 4, 5, 5)
    expected = network(x)
    record = make_separable(network)
    assert record["layers"]["0"]["energy"] == pytest.approx(1.0)
    assert network[0][0].groups == 4 and network[0][1].kernel_size == (1, 1)
    assert torch.allclose(network(x), expected, atol=1e-5)


def test_a_generator_made_separable_loads_generates_and_fine_tunes(tmp_path):
    run = train_tiny("dcgan", tmp_path / "gan", "model.image_size=16", "train.max_steps=2").run_dir
    result = optimize(run, tmp_path / "sep", Plan(separable=True, finetune=2), measure=False)
    # The last conv (8 -> 1 channel) stays whole: 16 x 8 + 8 x 1 depthwise + pointwise weights > 16 x 8 x 1.
    assert set(result.transforms[0]["layers"]) == {"generator.network.body.2"}
    loaded = aigc.load(tmp_path / "sep")
    assert loaded.module.generator.network.body[2][0].groups == loaded.module.generator.network.body[2][0].in_channels
    assert loaded.generate(LatentImageRequest(count=2, seed=0)).images.shape[1:3] == (16, 16)
    with pytest.raises(AigcError, match="no k x k convolution"):
        make_separable(nn.Sequential(nn.Linear(3, 3), nn.Conv2d(3, 3, 1)))
