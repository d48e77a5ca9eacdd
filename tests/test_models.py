"""Generator options and the shared-trunk discriminator."""

import pytest
import torch

from edgegan.models import ResnetGenerator, SharedTrunkPatchGAN, build_model
from edgegan.errors import CheckpointError


@pytest.mark.parametrize("upsample", ["transposed", "resize"])
def test_generator_shapes_and_rebuild(upsample):
    g = ResnetGenerator(3, 3, ngf=8, n_blocks=2, upsample=upsample, padding="zero", norm="in")
    assert g(torch.randn(2, 3, 64, 64)).shape == (2, 3, 64, 64)
    clone = build_model(g.arch())
    clone.load_state_dict(g.state_dict())
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(clone(x), g(x))


def test_generator_rejects_unknown_options():
    with pytest.raises(ValueError, match="norm must be one of"):
        ResnetGenerator(norm="group")
    with pytest.raises(CheckpointError, match="unknown architecture"):
        build_model({"name": "unet"})


def test_shared_trunk_discriminator_has_one_head_per_width():
    d = SharedTrunkPatchGAN(in_channels=2, ndf=8, n_layers=3, n_share=2, n_heads=4)
    x = torch.randn(2, 2, 32, 32)
    outs = [d(x, head=i) for i in range(4)]
    assert all(o.shape == outs[0].shape for o in outs) and outs[0].shape[1] == 1
    assert not torch.allclose(outs[0], outs[1])  # heads are separate
    # the trunk is shared: a gradient through any head reaches the same trunk parameters
    outs[3].mean().backward()
    assert d.trunk[0].weight_orig.grad is not None
    assert all(p.grad is None for p in d.heads[0].parameters())
