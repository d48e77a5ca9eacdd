"""The SlimGAN recipe for noise → image generation (METHODS.md §1), on Fashion-MNIST (all 10 classes).

Each step runs the slimmable generator at every width, widest first, on the same noise (and labels):

* discriminator: ``SharedTrunkProjectionD`` — shared first layers, one head per width (SlimGAN's
  "shared D"), hinge loss per width on its own head; class-conditional via projection (cGAN-pd).
  ``d_share=0`` gives every width its own discriminator; ``same_d`` one discriminator for all
  widths (the ablation's "same D"); ``slimmable_d`` one ``SlimmableProjectionD`` whose width
  switches with the generator's (the ablation's "slimmable D": width w is scored by the D's first
  w·C channels of every layer, spectrally normalised per slice);
* generator, per width: hinge adversarial loss on its head + ``λ_distill`` · inplace distillation
  (``stepwise``: each width from the next wider one, detached; ``naive``: from the widest).

After training, BatchNorm statistics can be re-estimated per width (``recalibrate_bn`` batches),
and the generator is scored per width with the project's classifier: FD-FMNIST, IS-FMNIST, and mIC
over widths (``evaluate_gan``). ``train_slimgan`` returns a checkpoint dict
(``edgegan.checkpoint`` layout).
"""

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..checkpoint import FORMAT
from ..errors import EdgeganError
from ..models import DCGANGenerator, NoiseResnetGenerator, SharedTrunkProjectionD, SlimmableProjectionD
from ..nn import at_width
from .losses import d_hinge_loss, g_hinge_loss, inplace_distillation
from .checkpointing import cpu_state_dict
from .metrics import width_key
from .recipe_options import d_schedule, validate_shared

GENERATORS = {"dcgan": DCGANGenerator, "resnet": NoiseResnetGenerator}
ADAM_BETAS = (0.0, 0.9)  # SNGAN / SlimGAN


@dataclass
class SlimGANConfig:
    model: str = "dcgan"
    nz: int = 128
    ngf: int = 32
    ndf: int = 32
    d_share: int = 1
    same_d: bool = False  # ablation: one discriminator (one head) scores every width
    slimmable_d: bool = False  # ablation: one discriminator whose width switches with the generator's
    n_classes: int = 0  # 0 or 10
    cbn: str = "sliceable"
    widths: tuple = (0.25, 0.5, 0.75, 1.0)
    steps: int = 2000
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    lambda_distill: float = 1.0
    distill: str = "stepwise"
    recalibrate_bn: int = 0
    eval_images: int = 1000
    log_every: int = 100
    seed: int = 0
    device: str = "cpu"

    def validate(self):
        if self.model not in GENERATORS:
            raise EdgeganError("--model must be one of %s, got %r" % (", ".join(GENERATORS), self.model))
        if self.n_classes not in (0, 10):
            raise EdgeganError("--n-classes must be 0 (unconditional) or 10 (Fashion-MNIST), got %r" % self.n_classes)
        validate_shared(self, ("steps", "batch_size", "ngf", "ndf", "nz"))


def build_gan(config, size=32, out_channels=1):
    widths = sorted(float(w) for w in config.widths)
    g = GENERATORS[config.model](nz=config.nz, out_channels=out_channels, ngf=config.ngf, size=size,
                                 n_classes=config.n_classes, cbn=config.cbn, widths=widths)
    if config.slimmable_d:
        return g, SlimmableProjectionD(out_channels, ndf=config.ndf, size=size, n_classes=config.n_classes,
                                       widths=widths)
    try:
        d = SharedTrunkProjectionD(out_channels, ndf=config.ndf, size=size, n_classes=config.n_classes,
                                   n_share=config.d_share, n_heads=1 if config.same_d else len(widths))
    except ValueError as e:  # n_share beyond the discriminator's stages
        raise EdgeganError("--d-share %d: %s" % (config.d_share, e))
    return g, d


def _gen_args(generator, z, y):
    return (z, y) if generator.n_classes else (z,)


def train_step(generator, discriminator, opt_g, opt_d, real, labels, config, per_width=None):
    """One SlimGAN step; returns the losses (averaged over widths) as floats.

    ``generator`` / ``discriminator`` may be ``DistributedDataParallel`` wrappers: every rank runs
    every width each step, so all parameters get gradients and the all-reduce lines up. The generator
    loss goes through the unwrapped discriminator (its gradients are not wanted there). When
    ``per_width`` is a dict it receives ``d/wX`` and ``g/wX`` for every width.
    """
    from .distributed import unwrap

    g_net, d_net = unwrap(generator), unwrap(discriminator)
    widths = g_net.widths  # ascending
    schedule = d_schedule(d_net, widths)
    n = real.shape[0]
    z = torch.randn(n, g_net.nz, device=real.device)
    y = labels if g_net.n_classes else None
    fakes = {}
    for w in reversed(widths):  # widest first
        with at_width(g_net, w):
            fakes[w] = generator(*_gen_args(g_net, z, y))

    d_net.requires_grad_(True)
    opt_d.zero_grad(set_to_none=True)
    d_terms = []
    for (head, d_width), w in zip(schedule, widths):
        with d_width():
            d_terms.append(d_hinge_loss(discriminator(real, y, head), discriminator(fakes[w].detach(), y, head)))
    loss_d = sum(d_terms)
    loss_d.backward()
    opt_d.step()

    d_net.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    g_terms = []
    for (head, d_width), w in zip(schedule, widths):
        with d_width():
            g_terms.append(g_hinge_loss(d_net(fakes[w], y, head)))
    adversarial = sum(g_terms)
    distillation = inplace_distillation([fakes[w] for w in widths], config.distill)
    loss_g = adversarial + config.lambda_distill * distillation
    loss_g.backward()
    opt_g.step()
    d_net.requires_grad_(True)
    if per_width is not None:
        for w, ld, lg in zip(widths, d_terms, g_terms):
            per_width["d/" + width_key(w)] = ld.item()
            per_width["g/" + width_key(w)] = lg.item()
    k = len(widths)
    return {"d": loss_d.item() / k, "g": adversarial.item() / k, "distill": distillation.item()}


@torch.no_grad()
def sample_widths(generator, n, seed=0, batch_size=250, device="cpu"):
    """``{width: N×C×H×W images}`` from the same noise (and labels: ``k mod 10``) at every width."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, generator.nz, generator=gen)
    y = torch.arange(n) % generator.n_classes if generator.n_classes else None
    was_training = generator.training
    generator.eval()
    out = {}
    for w in generator.widths:
        parts = []
        with at_width(generator, w):
            for i in range(0, n, batch_size):
                args = (z[i:i + batch_size].to(device),)
                if y is not None:
                    args += (y[i:i + batch_size].to(device),)
                parts.append(generator(*args).cpu())
        out[w] = torch.cat(parts)
    generator.train(was_training)
    return out


@torch.no_grad()
def evaluate_gan(generator, real_images, n=1000, classifier=None, seed=0, device="cpu"):
    """Per width ``{"fd_fmnist", "is_fmnist"}`` plus ``"mic"`` across widths (classifier features)."""
    from .gan_metrics import classifier_outputs, fd_fmnist, is_fmnist, mic

    if classifier is None:
        from .classifier import load_classifier

        classifier, _ = load_classifier()
    samples = sample_widths(generator, n, seed=seed, device=device)
    real_feats, _ = classifier_outputs(real_images[:n], classifier)
    feats, metrics = {}, {}
    for w, images in samples.items():
        f, p = classifier_outputs(images, classifier)
        feats[w] = f
        metrics[width_key(w)] = {"fd_fmnist": fd_fmnist(real_feats, f), "is_fmnist": is_fmnist(p)}
    return {"widths": metrics, "mic": mic(feats)}


def _batches(images, labels, batch_size, seed, start=0):
    """Shuffled batches forever (a new seeded permutation each epoch), from batch ``start`` on."""
    rng = np.random.default_rng(seed)
    per_epoch = max(1, len(images) // batch_size)
    for _ in range(start // per_epoch):  # skip whole epochs without touching the images
        rng.permutation(len(images))
    offset = start % per_epoch
    while True:
        order = torch.from_numpy(rng.permutation(len(images)))
        for i in range(offset * batch_size, len(order) - batch_size + 1, batch_size):
            idx = order[i:i + batch_size]
            yield images[idx], labels[idx]
        offset = 0


def _checkpoint(generator, discriminator, config, size, channels, train_images, seconds, history, metrics):
    return {
        "format": FORMAT,
        "generator": {"arch": generator.arch(), "state_dict": cpu_state_dict(generator)},
        "discriminator": {"arch": discriminator.arch(), "state_dict": cpu_state_dict(discriminator)},
        "widths": list(generator.widths),
        "data": {"name": "fmnist", "size": size, "in_channels": 0, "out_channels": channels,
                 "nz": generator.nz, "n_classes": generator.n_classes,
                 "input": {"content": "noise", "shape": [generator.nz]},
                 "output": {"range": [-1.0, 1.0], "mean": [0.5] * channels, "std": [0.5] * channels,
                            "content": "image", "color": "grey" if channels == 1 else "rgb"}},
        "train": dict(asdict(config), recipe="slimgan", widths=list(generator.widths),
                      seconds=round(seconds, 1), train_images=train_images, history=list(history),
                      torch=str(torch.__version__)),
        "metrics": metrics,
    }


def train_slimgan(config, images, labels, test_images=None, progress=None, resume=None, save_path=None,
                  save_every=0, log_csv=None):
    """Train a slimmable noise → image GAN on ``images`` (N×1×32×32 in [-1, 1]) and ``labels`` (N int64).

    Returns a checkpoint dict; ``metrics`` holds FD-FMNIST / IS-FMNIST per width and mIC when
    ``config.eval_images`` and ``test_images`` are given. The dict carries ``"resume"`` (optimizers,
    step, RNG states; ``edgegan.train.checkpointing``), so training can go on from it:

    * ``resume``: path of such a checkpoint; training continues from its step up to ``config.steps``;
    * ``save_path`` / ``save_every``: write a resumable checkpoint there every ``save_every`` steps
      (atomically);
    * ``log_csv``: append one CSV row per ``config.log_every`` steps (``edgegan.train.logging``).

    Launched by ``torchrun`` (``WORLD_SIZE`` > 1), G and D are wrapped in DistributedDataParallel,
    each rank draws its own batches and noise (``config.batch_size`` per rank), and only rank 0
    saves, logs and reports progress; every rank returns the checkpoint dict.
    """
    config.validate()
    from . import distributed
    from .checkpointing import load_resume, resume_state, restore
    from .logging import open_logger
    from .slimmable import resolve_device, seed_everything

    info = distributed.setup(resolve_device(config.device))
    device = info.device
    seed_everything(config.seed)
    size, channels = images.shape[-1], images.shape[1]
    generator, discriminator = build_gan(config, size, channels)
    generator.to(device)
    discriminator.to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr_g, betas=ADAM_BETAS)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_d, betas=ADAM_BETAS)
    start_step, history, prior_seconds = 0, [], 0.0
    if resume:
        saved, state = load_resume(resume)
        start_step = restore(saved, state, generator, discriminator, opt_g, opt_d)
        history = list(state.get("history", []))
        prior_seconds = float(saved.get("train", {}).get("seconds", 0.0))
        if progress and info.is_main:
            progress("resumed from %s at step %d" % (resume, start_step))
    if info.enabled:  # each rank its own noise and batches; the weights come from rank 0
        torch.manual_seed(config.seed + 1000003 * info.rank + start_step)
    g_train = distributed.wrap(generator, info)
    d_train = distributed.wrap(discriminator, info)
    batches = _batches(images, labels, config.batch_size, config.seed + info.rank, start=start_step)
    logger = open_logger(log_csv if info.is_main else None, append=bool(resume))
    start = time.perf_counter() - prior_seconds  # seconds count the whole run, across resumes
    generator.train()
    discriminator.train()

    def snapshot(step, metrics=None):
        ckpt = _checkpoint(generator, discriminator, config, size, channels, len(images),
                           time.perf_counter() - start, history, metrics or {})
        ckpt["resume"] = resume_state(step, opt_g, opt_d, history)
        return ckpt

    log_every = max(1, config.log_every)
    try:
        for step in range(start_step + 1, config.steps + 1):
            real, y = next(batches)
            per_width = {}
            losses = train_step(g_train, d_train, opt_g, opt_d, real.to(device), y.to(device), config,
                                per_width=per_width)
            logged = step % log_every == 0 or step == config.steps
            if logged:
                history.append({"step": step, "losses": losses})
                logger.log(step, time.perf_counter() - start, dict(losses, **per_width))
                if progress and info.is_main:
                    progress("step %d: %s" % (step, "  ".join("%s %.3f" % kv for kv in losses.items())))
            if save_path and save_every and step % save_every == 0 and step < config.steps and info.is_main:
                from ..checkpoint import save_checkpoint

                save_checkpoint(save_path, snapshot(step))
    finally:
        logger.close()
    final_state = resume_state(max(start_step, config.steps), opt_g, opt_d, history)
    if config.recalibrate_bn and info.is_main:
        from .recalibrate import recalibrate_bn

        gen = torch.Generator().manual_seed(config.seed + 1)
        calib = []
        for _ in range(config.recalibrate_bn):
            z = torch.randn(config.batch_size, generator.nz, generator=gen)
            calib.append((z, torch.randint(0, generator.n_classes, (config.batch_size,), generator=gen)) if generator.n_classes else (z,))
        recalibrate_bn(generator, calib, device=device)
    train_seconds = time.perf_counter() - start
    metrics = {}
    if config.eval_images and test_images is not None and info.is_main:
        metrics = evaluate_gan(generator, test_images, n=min(config.eval_images, len(test_images)), device=device)
    ckpt = _checkpoint(generator, discriminator, config, size, channels, len(images), train_seconds, history,
                       metrics)
    ckpt["resume"] = final_state
    generator.cpu()
    discriminator.cpu()
    return ckpt
