"""The "slimmable D" ablation of SlimGAN (METHODS.md §1): one discriminator whose width switches with the
generator's, spectrally normalised on the active slice of each weight."""

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import spectral_norm

from edgegan.checkpoint import load_checkpoint, save_checkpoint
from edgegan.models import SharedTrunkPatchGAN, SlimmablePatchGAN, SlimmableProjectionD, build_model
from edgegan.nn import SNElasticConv2d, at_width
from edgegan.train.slimgan import SlimGANConfig, build_gan, train_slimgan

WIDTHS = (0.25, 0.5, 0.75, 1.0)


def _convs(d):
    return [m for m in d.modules() if isinstance(m, SNElasticConv2d)]


def _true_sigma(weight_slice):
    return torch.linalg.matrix_norm(weight_slice.reshape(weight_slice.shape[0], -1), 2)


def test_sn_uses_sigma_of_the_active_slice():
    torch.manual_seed(0)
    d = SlimmableProjectionD(1, ndf=8, size=16, n_classes=10, widths=WIDTHS).train()
    x, y = torch.randn(2, 1, 16, 16), torch.tensor([3, 7])
    for w in WIDTHS:
        with at_width(d, w), torch.no_grad():
            for _ in range(10):  # one power iteration per training forward
                d(x, y)
        for conv in _convs(d) + [d.linear, d.embed]:
            o, i = conv.sn_shapes[WIDTHS.index(w)]
            sl = conv.weight[:o, :i].detach()
            with torch.no_grad():
                for _ in range(300):  # more iterations on this slice's own u / v
                    conv.sigma(sl)
            d.eval()
            est = conv.sigma(sl)
            d.train()
            torch.testing.assert_close(est, _true_sigma(sl), rtol=1e-4, atol=1e-6)
    # the slice's σ is not the full weight's: normalising the whole tensor would be wrong
    conv = _convs(d)[1]
    o, i = conv.sn_shapes[0]
    assert abs(_true_sigma(conv.weight[:o, :i].detach()) - _true_sigma(conv.weight.detach())) > 1e-3
    # and the conv really runs W[:o, :i] / σ(W[:o, :i])
    d.eval()
    conv.active_out = o
    h = torch.randn(2, i, 8, 8)
    sl = conv.weight[:o, :i].detach()
    expected = F.conv2d(h, sl / _true_sigma(sl), conv.bias[:o], stride=2, padding=1)
    torch.testing.assert_close(conv(h), expected, rtol=1e-3, atol=1e-4)


def test_full_width_matches_torch_spectral_norm():
    """At full width one training forward is torch's ``spectral_norm`` step (same u, v, same order)."""
    torch.manual_seed(0)
    ours = SNElasticConv2d(4, 6, 3, padding=1, widths=(1.0,)).train()
    ref = spectral_norm(torch.nn.Conv2d(4, 6, 3, padding=1)).train()
    with torch.no_grad():
        ref.weight_orig.copy_(ours.weight)
        ref.bias.copy_(ours.bias)
        ref.weight_u.copy_(ours.sn_u_6x4)
        ref.weight_v.copy_(ours.sn_v_6x4)
    x = torch.randn(2, 4, 5, 5)
    for _ in range(2):
        torch.testing.assert_close(ours(x), ref(x))
    torch.testing.assert_close(ours.sn_u_6x4, ref.weight_u)


def test_widths_keep_separate_power_iteration_vectors():
    torch.manual_seed(0)
    d = SlimmableProjectionD(1, ndf=8, size=16, n_classes=0, widths=WIDTHS).train()
    conv = _convs(d)[1]
    assert len(conv.sn_shapes) == len(WIDTHS)
    names = [n for n, _ in conv.named_buffers() if n.startswith("sn_u_")]
    assert len(names) == len(WIDTHS)
    before = {n: b.clone() for n, b in d.named_buffers()}
    with at_width(d, 0.5):
        d(torch.randn(2, 1, 16, 16))
    changed = {n for n, b in d.named_buffers() if not torch.equal(b, before[n])}
    assert changed and all(n.endswith("_%dx%d" % conv.sn_shapes[1]) or not n.startswith("body.2.")
                           for n in changed)
    assert "body.2.sn_u_%dx%d" % conv.sn_shapes[1] in changed
    for o, i in (conv.sn_shapes[0], conv.sn_shapes[2], conv.sn_shapes[3]):
        assert "body.2.sn_u_%dx%d" % (o, i) not in changed
    # eval mode does not iterate
    d.eval()
    before = {n: b.clone() for n, b in d.named_buffers()}
    d(torch.randn(2, 1, 16, 16))
    assert all(torch.equal(b, before[n]) for n, b in d.named_buffers())
    # a width it was not built for is refused clearly
    with at_width(d, 0.3), pytest.raises(ValueError, match="spectral-norm state"):
        d(torch.randn(2, 1, 16, 16))


def test_output_shapes_and_conditional_projection():
    torch.manual_seed(0)
    d = SlimmableProjectionD(1, ndf=4, size=32, n_classes=10, widths=WIDTHS).eval()
    x, y = torch.randn(3, 1, 32, 32), torch.tensor([0, 4, 9])
    for w in WIDTHS:
        with at_width(d, w), torch.no_grad():
            out = d(x, y)
            assert out.shape == (3,)
            h = d.body(x).sum(dim=(2, 3))
            c = h.shape[1]
            assert c == round(w * 32)
            lin = d.linear.weight[:, :c] / d.linear.sigma(d.linear.weight[:, :c])
            emb = d.embed.weight[:, :c] / d.embed.sigma(d.embed.weight[:, :c])
            expected = (h @ lin.t()).squeeze(1) + d.linear.bias + (emb[y] * h).sum(1)
            torch.testing.assert_close(out, expected)
            assert not torch.allclose(out, d(x, (y + 1) % 10))  # the class matters
    with pytest.raises(ValueError, match="class-conditional"):
        d(x)
    p = SlimmablePatchGAN(6, ndf=4, n_layers=2, widths=WIDTHS)
    shared = SharedTrunkPatchGAN(6, ndf=4, n_layers=2, n_share=0, n_heads=1)
    xp = torch.randn(2, 6, 32, 32)
    for w in WIDTHS:
        with at_width(p, w):
            assert p(xp).shape == shared(xp).shape == (2, 1, 6, 6)


def _data(n=16):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 32, 32, generator=g) * 2 - 1, torch.arange(n) % 10


def _config(steps, **kw):
    kw = dict(dict(nz=8, ngf=4, ndf=4, n_classes=10, steps=steps, batch_size=8, eval_images=0, log_every=1,
                   slimmable_d=True), **kw)
    return SlimGANConfig(**kw)


def test_train_slimgan_with_slimmable_d_saves_reloads_and_resumes(tmp_path, one_thread):
    _, d = build_gan(_config(1))
    assert isinstance(d, SlimmableProjectionD)
    images, labels = _data()
    path = str(tmp_path / "s.pt")
    ckpt = train_slimgan(_config(2), images, labels)
    save_checkpoint(path, ckpt)
    saved = load_checkpoint(path)
    arch = saved["discriminator"]["arch"]
    assert arch["name"] == "slimmable_projection_d" and arch["kwargs"]["widths"] == list(WIDTHS)
    d = build_model(arch)
    d.load_state_dict(saved["discriminator"]["state_dict"])  # strict: every width's u / v is there
    assert saved["train"]["slimmable_d"] is True
    # the power iterations of every width ran during training
    fresh = build_model(arch)
    assert not torch.equal(d.body[2].sn_u_2x1, fresh.body[2].sn_u_2x1)
    # resume goes on to the same weights as a straight run
    straight = train_slimgan(_config(3), images, labels)
    resumed = train_slimgan(_config(3), images, labels, resume=path)
    for key in ("generator", "discriminator"):
        for name, v in straight[key]["state_dict"].items():
            assert torch.equal(v, resumed[key]["state_dict"][name]), (key, name)


def test_paired_recipe_slimmable_d_step(one_thread):
    from edgegan.train.slimmable import SlimmableConfig, build_models, train_step

    config = SlimmableConfig(ngf=4, n_blocks=1, ndf=4, slimmable_d=True)
    g, d = build_models(config, {"size": 32, "in_channels": 1, "out_channels": 1}, "cpu")
    assert isinstance(d, SlimmablePatchGAN) and d.arch()["kwargs"]["n_layers"] == 2
    opt_g, opt_d = (torch.optim.Adam(m.parameters(), lr=1e-3) for m in (g, d))
    before = d.body[0].weight.detach().clone()
    losses = train_step(g, d, opt_g, opt_d, torch.randn(2, 1, 32, 32), torch.randn(2, 1, 32, 32), config)
    assert set(losses) >= {"d", "g", "l1"} and not torch.equal(before, d.body[0].weight)
    build_model(d.arch()).load_state_dict(d.state_dict())


def test_same_d_and_slimmable_d_are_exclusive(tmp_path, capsys):
    from edgegan.cli import main as edgegan_main
    from edgegan.cli.train_slimgan import main
    from edgegan.errors import EdgeganError
    from edgegan.train.slimmable import SlimmableConfig

    with pytest.raises(EdgeganError, match="pick one"):
        SlimGANConfig(same_d=True, slimmable_d=True).validate()
    with pytest.raises(EdgeganError, match="pick one"):
        SlimmableConfig(same_d=True, slimmable_d=True).validate()
    assert main(["--same-d", "--slimmable-d", "--out", str(tmp_path / "x.pt")]) == 2
    assert "--same-d and --slimmable-d" in capsys.readouterr().err
    assert edgegan_main(["train", "slimmable", "--data", "fmnist-shoes", "--same-d", "--slimmable-d",
                         "--out", str(tmp_path / "y.pt")]) == 2
    assert "--same-d and --slimmable-d" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "y.pt").exists()


# --- the sliced spectral-norm layers (edgegan.nn.spectral) ------------------------------------------------

def test_sn_state_is_the_same_whatever_the_global_rng():
    """The power-iteration start vectors come from a fixed per-slice seed: two layers with the same weights
    built under different global seeds hold identical (u, v), and building one leaves the global RNG alone."""
    states = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        conv = SNElasticConv2d(6, 5, 3, widths=(0.5, 1.0))
        with torch.no_grad():
            conv.weight.copy_(torch.linspace(-1, 1, conv.weight.numel()).view_as(conv.weight).sin())
        conv._sn_register(conv.sn_shapes)  # re-derive (u, v) from the fixed weights
        states.append({k: v.clone() for k, v in conv.state_dict().items() if k.startswith("sn_")})
        after = torch.rand(1)
        torch.manual_seed(seed)
        torch.nn.Conv2d(6, 5, 3)  # the same parameter draws without the spectral-norm state
        assert torch.equal(after, torch.rand(1))
    assert set(states[0]) == {"sn_u_2x3", "sn_v_2x3", "sn_u_5x6", "sn_v_5x6"}
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_sn_conv_options_reach_the_conv():
    from edgegan.nn import SNElasticConv2d as SN

    conv = SN(2, 3, 3)
    assert conv(torch.randn(1, 2, 5, 5)).shape == (1, 3, 3, 3)  # padding 0 by default
    assert conv.bias is not None and SN(2, 3, 3, bias=False).bias is None
    # fixed_out: the output width stays whatever a slot asks (the image-side / logit layers)
    head = SN(4, 3, 3, padding=1, widths=(0.5, 1.0), fixed_out=True)
    assert head.sn_shapes == [(3, 2), (3, 4)]
    head.active_out = 1  # what a channel slot would set
    assert head(torch.randn(1, 2, 5, 5)).shape == (1, 3, 5, 5)


def test_sn_linear_reads_the_last_dimension_and_names_its_limits():
    from edgegan.nn.spectral import SNElasticLinear

    torch.manual_seed(0)
    lin = SNElasticLinear(8, 3, widths=(0.5, 1.0)).eval()
    assert SNElasticLinear(8, 3, bias=False).bias is None
    x = torch.randn(2, 5, 4)  # a 3-D input: features are the last dimension
    w = lin.weight[:, :4]
    sigma = torch.dot(lin.sn_u_3x4, torch.mv(w, lin.sn_v_3x4))
    torch.testing.assert_close(lin(x), F.linear(x, w / sigma, lin.bias))
    with pytest.raises(ValueError, match=r"^SNElasticLinear got 9 input features, holds 8$"):
        lin(torch.randn(2, 9))
    with pytest.raises(ValueError, match=r"^SNElasticLinear has no spectral-norm state for the 3×3 slice; it runs "
                                         r"at \[\(3, 4\), \(3, 8\)\] only \(the widths it was built for\)$"):
        lin(torch.randn(2, 3))


def test_sn_embedding_reads_every_column_by_default_and_names_its_limit():
    from edgegan.nn.spectral import SNElasticEmbedding

    torch.manual_seed(0)
    emb = SNElasticEmbedding(5, 8, widths=(0.5, 1.0)).eval()
    y = torch.tensor([0, 3])
    sigma = torch.dot(emb.sn_u_5x8, torch.mv(emb.weight, emb.sn_v_5x8))
    torch.testing.assert_close(emb(y), F.embedding(y, emb.weight / sigma))
    torch.testing.assert_close(emb(y, 8), emb(y))
    with pytest.raises(ValueError, match=r"^SNElasticEmbedding asked for 9 features, holds 8$"):
        emb(y, 9)
