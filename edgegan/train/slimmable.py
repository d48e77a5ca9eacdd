"""The SlimGAN recipe for paired image-to-image translation (METHODS.md §1).

Each step runs the slimmable generator at every width, widest first, on the same batch:

* discriminator: a shared-trunk PatchGAN with one head per width, conditional (it scores
  ``concat(input, image)``), hinge loss per width on its own head;
* generator, per width: hinge adversarial loss on its head + ``λ_L1 · L1`` to the target
  (pix2pix) + ``λ_distill`` · inplace distillation from the next wider width's output
  (stepwise, SlimGAN; or from the widest, "naive"), the teacher detached.

``train_slimmable`` returns a checkpoint dict in the ``edgegan.checkpoint`` layout, with the
per-width PSNR / SSIM / L1 on the whole held-out set.
"""

import random
import sys
import time
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..checkpoint import FORMAT
from ..errors import EdgeganError
from ..models import DEFAULT_WIDTHS, ResnetGenerator, SharedTrunkPatchGAN, SlimmablePatchGAN, UnetGenerator
from ..nn import at_width
from .losses import d_hinge_loss, g_hinge_loss, inplace_distillation
from .metrics import evaluate_widths, width_key
from .precision import AMP_MODES, Precision, channels_last
from .recalibrate import recalibrate_bn
from .recipe_options import d_schedule, validate_shared

ADAM_BETAS = (0.5, 0.999)  # pix2pix / SlimGAN
ARCHS = ("resnet", "unet")
MAX_UNET_DOWNS = 8  # pix2pix's unet_256


@dataclass
class SlimmableConfig:
    """Arguments of the recipe; recorded verbatim in the checkpoint's ``train`` entry.

    ``d_layers`` is the number of stride-2 convs of the PatchGAN; ``None`` picks 2 below 128²
    (its receptive field, 34², then covers a 32² image) and 3 from 128² (pix2pix's 70² patches).
    ``d_share`` layers of it are shared by the per-width heads (0: a discriminator per width);
    ``same_d`` (ablation) scores every width with one discriminator; ``slimmable_d`` (ablation) with one
    ``SlimmablePatchGAN`` whose width switches with the generator's (``d_share`` is then unused).
    ``recalibrate_bn`` re-estimates the BatchNorm statistics of every width on that many
    training batches with the final weights, before the final evaluation.
    ``arch`` picks the generator: ``resnet`` (``n_blocks``, ``padding``, ``upsample``) or ``unet``
    (``num_downs`` levels, ``None``: as many as the image side allows, at most 8 — pix2pix's
    ``unet_256``; ``dropout``: pix2pix's Dropout(0.5) in the middle levels).

    The 256² / GPU options: ``amp`` (``none``, ``bf16``, ``fp16``: ``edgegan.train.precision``),
    ``channels_last`` (NHWC memory format for models and batches), ``workers`` (DataLoader processes;
    pinned memory on CUDA) and ``fid_weights`` (a local pytorch-fid Inception file: FID per width on the
    held-out set at the end). Augmentation is the data set's (``edgegan.data.load_pair(augment=…)``).
    """

    arch: str = "resnet"
    ngf: int = 16
    n_blocks: int = 6
    norm: str = "bn"
    padding: str = "reflect"
    upsample: str = "transposed"
    num_downs: Optional[int] = None
    dropout: bool = False
    widths: tuple = DEFAULT_WIDTHS
    ndf: int = 16
    d_layers: Optional[int] = None
    d_share: int = 2
    same_d: bool = False
    slimmable_d: bool = False
    steps: int = 2000
    batch_size: int = 32
    lr: float = 2e-4
    lambda_l1: float = 100.0
    lambda_distill: float = 100.0
    distill: str = "stepwise"
    eval_every: int = 500
    eval_images: int = 500
    recalibrate_bn: int = 0
    seed: int = 0
    device: str = "cpu"
    amp: str = "none"
    channels_last: bool = False
    workers: int = 0
    fid_weights: Optional[str] = None

    def validate(self):
        if self.arch not in ARCHS:
            raise EdgeganError("--arch must be one of %s, got %r" % (", ".join(ARCHS), self.arch))
        if self.num_downs is not None and (self.arch != "unet" or int(self.num_downs) < 2):
            raise EdgeganError("--num-downs is the number of UNet levels (--arch unet), at least 2; got %r"
                               % (self.num_downs,))
        if self.dropout and self.arch != "unet":
            raise EdgeganError("--dropout is an option of --arch unet")
        if not self.widths or any(not 0.0 < float(w) <= 1.0 for w in self.widths):
            raise EdgeganError("--widths must be multipliers in (0, 1], got %s" % (self.widths,))
        validate_shared(self, ("steps", "batch_size", "ngf", "ndf"))
        if self.amp not in AMP_MODES:
            raise EdgeganError("--amp must be one of %s, got %r" % (", ".join(AMP_MODES), self.amp))
        if self.workers < 0:
            raise EdgeganError("--workers must be 0 (load in the training process) or more, got %r" % self.workers)


def resolve_device(name):
    """``torch.device`` for ``cpu`` / ``cuda[:N]``; a clear error when CUDA is asked for but absent."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        why = "this torch %s is a CPU-only build" % torch.__version__ if torch.version.cuda is None \
            else "torch finds no CUDA GPU"
        raise EdgeganError("--device %s: CUDA is not available (%s); use --device cpu" % (name, why))
    if name != "cpu" and not name.startswith("cuda"):
        raise EdgeganError("--device must be cpu or cuda, got %r" % name)
    return torch.device(name)


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def endless_batches(dataset, batch_size, seed, start=0, rank=0, world_size=1, workers=0, pin_memory=False):
    """Shuffled training batches forever (a new seeded permutation each epoch), from batch ``start`` on.

    With ``world_size`` > 1 each rank reads its own shard of every epoch (as ``DistributedSampler``);
    ``workers`` loader processes, ``pin_memory`` for a CUDA device; augmenting data sets get a seed per
    sample. See ``edgegan.train.batches``.
    """
    from .batches import endless_batches as batches

    return batches(dataset, batch_size, seed, start=start, rank=rank, world_size=world_size, workers=workers,
                   pin_memory=pin_memory)


def unet_levels(size, num_downs=None):
    """The UNet's number of levels for ``size``² images: ``num_downs`` (checked: ``size`` must be a multiple of
    ``2^num_downs``), else the most the side allows (its factors of 2), at most ``MAX_UNET_DOWNS``."""
    size = int(size)
    most = 0
    while most < MAX_UNET_DOWNS and size % 2 ** (most + 1) == 0:
        most += 1
    if most < 2:
        raise EdgeganError("a UNet needs --size to be a multiple of 4 (2 levels at least), got %d" % size)
    if num_downs is None:
        return most
    if size % 2 ** int(num_downs):
        raise EdgeganError("--num-downs %d halves the image %d times: --size must be a multiple of %d, got %d (use "
                           "--num-downs %d or fewer)" % (num_downs, num_downs, 2 ** int(num_downs), size, most))
    return int(num_downs)


def build_generator(config, meta):
    """The slimmable generator ``config.arch`` names, for ``meta``'s image channels and size."""
    widths = sorted(float(w) for w in config.widths)
    if config.arch == "unet":
        return UnetGenerator(meta["in_channels"], meta["out_channels"], ngf=config.ngf,
                             num_downs=unet_levels(meta["size"], config.num_downs), norm=config.norm,
                             dropout=config.dropout, widths=widths)
    if meta["size"] < 8 or meta["size"] % 4:
        raise EdgeganError("--size must be a multiple of 4 and at least 8 (the generator downsamples twice), "
                           "got %d" % meta["size"])
    return ResnetGenerator(meta["in_channels"], meta["out_channels"], ngf=config.ngf, n_blocks=config.n_blocks,
                           norm=config.norm, padding=config.padding, upsample=config.upsample, widths=widths)


def build_models(config, meta, device):
    """The slimmable generator and its shared-trunk discriminator (one head per width) for ``meta``."""
    widths = sorted(float(w) for w in config.widths)
    generator = build_generator(config, meta)
    d_layers = config.d_layers or (2 if meta["size"] < 128 else 3)
    if getattr(config, "slimmable_d", False):
        discriminator = SlimmablePatchGAN(meta["in_channels"] + meta["out_channels"], ndf=config.ndf,
                                          n_layers=d_layers, widths=widths)
        return generator.to(device), discriminator.to(device)
    if config.d_share > d_layers + 1:
        raise EdgeganError("--d-share %d: the discriminator has %d layers before its output conv; share at most %d"
                           % (config.d_share, d_layers + 1, d_layers + 1))
    discriminator = SharedTrunkPatchGAN(meta["in_channels"] + meta["out_channels"], ndf=config.ndf,
                                        n_layers=d_layers, n_share=config.d_share,
                                        n_heads=1 if config.same_d else len(widths))
    return generator.to(device), discriminator.to(device)


def train_step(generator, discriminator, opt_g, opt_d, inputs, targets, config, per_width=None, precision=None):
    """One SlimGAN step on a batch; returns the losses (averaged over widths) as floats.

    ``generator`` / ``discriminator`` may be DistributedDataParallel wrappers (see
    ``edgegan.train.slimgan.train_step``); ``per_width``, when a dict, receives ``d/wX``, ``g/wX``
    and ``l1/wX``. ``precision`` (``edgegan.train.precision.Precision``) runs the forward passes under
    autocast and scales the losses for fp16; the losses themselves are computed in fp32.
    """
    from .distributed import unwrap

    prec = precision or Precision("none", inputs.device)
    g_net, d_net = unwrap(generator), unwrap(discriminator)
    widths = g_net.widths  # ascending
    schedule = d_schedule(d_net, widths)  # per width: its head, and the D's width (slimmable D)
    fakes = {}
    with prec.autocast():
        for w in reversed(widths):  # widest first
            with at_width(g_net, w):
                fakes[w] = generator(inputs)
    real_pair = torch.cat([inputs, targets], 1)

    d_net.requires_grad_(True)
    opt_d.zero_grad(set_to_none=True)
    d_terms = []
    with prec.autocast():
        for (head, d_width), w in zip(schedule, widths):
            with d_width():
                d_terms.append(d_hinge_loss(discriminator(real_pair, head).float(),
                                            discriminator(torch.cat([inputs, fakes[w].detach()], 1), head).float()))
    loss_d = sum(d_terms)
    prec.backward(loss_d)
    prec.step(opt_d)

    d_net.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    g_terms = []
    with prec.autocast():
        for (head, d_width), w in zip(schedule, widths):
            with d_width():
                g_terms.append(g_hinge_loss(d_net(torch.cat([inputs, fakes[w]], 1), head).float()))
    outputs = [fakes[w].float() for w in widths]
    l1_terms = [F.l1_loss(out, targets) for out in outputs]
    adversarial = sum(g_terms)
    reconstruction = sum(l1_terms)
    distillation = inplace_distillation(outputs, config.distill)
    loss_g = adversarial + config.lambda_l1 * reconstruction + config.lambda_distill * distillation
    prec.backward(loss_g)
    prec.step(opt_g)
    prec.update()
    d_net.requires_grad_(True)
    if per_width is not None:
        for w, ld, lg, l1 in zip(widths, d_terms, g_terms, l1_terms):
            per_width.update({"d/" + width_key(w): ld.item(), "g/" + width_key(w): lg.item(),
                              "l1/" + width_key(w): l1.item()})
    n = len(widths)
    return {"d": loss_d.item() / n, "g": adversarial.item() / n, "l1": reconstruction.item() / n,
            "distill": distillation.item()}


def _summary(metrics):
    return "  ".join("%s %.2f dB / %.3f%s" % (k, v["psnr"], v["ssim"], " / FID %.1f" % v["fid"] if "fid" in v else "")
                     for k, v in metrics.items())


def train_slimmable(config, train_set, test_set, progress=True, resume=None, save_path=None, save_every=0,
                    log_csv=None, log_every=100):
    """Train a slimmable generator on ``train_set`` and return its checkpoint dict.

    ``train_set`` / ``test_set`` yield ``(input, target)`` pairs in [-1, 1] and have ``describe()``
    (see ``edgegan.data``). Every ``eval_every`` steps the first ``eval_images`` held-out
    pairs are scored; at the end the whole held-out set is.

    Resumable like ``edgegan.train.slimgan.train_slimgan``: the dict carries ``"resume"``
    (optimizers, step, RNG states); ``resume`` continues from such a checkpoint up to
    ``config.steps``; ``save_path`` / ``save_every`` write one every N steps; ``log_csv`` gets a CSV
    row every ``log_every`` steps. Under ``torchrun`` G and D are DDP-wrapped, each rank reads its
    ``DistributedSampler`` shard, and only rank 0 saves, logs and reports.
    """
    config.validate()
    from . import distributed
    from .checkpointing import cpu_state_dict, load_resume, restore, resume_state
    from .logging import open_logger

    info = distributed.setup(resolve_device(config.device))
    device = info.device
    progress = progress and info.is_main
    seed_everything(config.seed)
    meta = train_set.describe()
    precision = Precision(config.amp, device)
    fid_net = None
    if config.fid_weights and info.is_main:  # fail before training, not after it
        from .gan_metrics import load_fid_inception

        fid_net = load_fid_inception(config.fid_weights)
    generator, discriminator = build_models(config, meta, device)
    generator = channels_last(generator, config.channels_last)
    discriminator = channels_last(discriminator, config.channels_last)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=ADAM_BETAS)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr, betas=ADAM_BETAS)
    start_step, history, prior_seconds = 0, [], 0.0
    if resume:
        saved, state = load_resume(resume)
        start_step = restore(saved, state, generator, discriminator, opt_g, opt_d)
        precision.load_state_dict(state.get("scaler"))
        history = list(state.get("history", []))
        prior_seconds = float(saved.get("train", {}).get("seconds", 0.0))
    if info.enabled:
        torch.manual_seed(config.seed + 1000003 * info.rank + start_step)
    g_train = distributed.wrap(generator, info)
    d_train = distributed.wrap(discriminator, info)
    pin = device.type == "cuda"
    batches = endless_batches(train_set, config.batch_size, config.seed, start=start_step, rank=info.rank,
                              world_size=info.world_size, workers=config.workers, pin_memory=pin)
    say = (lambda line: tqdm.write(line, file=sys.stderr)) if progress else (lambda line: None)
    logger = open_logger(log_csv if info.is_main else None, append=bool(resume))

    def snapshot(step):
        ckpt = {"format": FORMAT,
                "generator": {"arch": generator.arch(), "state_dict": cpu_state_dict(generator)},
                "discriminator": {"arch": discriminator.arch(), "state_dict": cpu_state_dict(discriminator)},
                "widths": list(generator.widths), "data": meta,
                "train": dict(asdict(config), recipe="slimmable", widths=list(generator.widths),
                              seconds=round(time.perf_counter() - start, 1), history=list(history)),
                "metrics": {}}
        ckpt["resume"] = training_state(step)
        return ckpt

    def training_state(step):
        state = resume_state(step, opt_g, opt_d, history)
        if precision.scaler is not None:
            state["scaler"] = precision.state_dict()
        return state

    start = time.perf_counter() - prior_seconds
    bar = tqdm(range(start_step + 1, config.steps + 1), desc="slimmable", disable=not progress, dynamic_ncols=True,
               initial=start_step, total=config.steps)
    generator.train()
    discriminator.train()
    try:
        for step in bar:
            inputs, targets = (channels_last(t.to(device, non_blocking=pin), config.channels_last)
                               for t in next(batches))
            per_width = {}
            losses = train_step(g_train, d_train, opt_g, opt_d, inputs, targets, config, per_width=per_width,
                                precision=precision)
            bar.set_postfix({k: "%.3f" % v for k, v in losses.items()}, refresh=False)
            if step % max(1, log_every) == 0 or step == config.steps:
                logger.log(step, time.perf_counter() - start, dict(losses, **per_width))
            if config.eval_every and step % config.eval_every == 0 and step < config.steps and info.is_main:
                scores = evaluate_widths(generator, test_set, generator.widths, device, limit=config.eval_images,
                                         progress=progress)
                history.append({"step": step, "seconds": round(time.perf_counter() - start, 1), "losses": losses,
                                "metrics": scores})
                say("step %d (%d held-out): %s" % (step, min(config.eval_images, len(test_set)), _summary(scores)))
            if save_path and save_every and step % save_every == 0 and step < config.steps and info.is_main:
                from ..checkpoint import save_checkpoint

                save_checkpoint(save_path, snapshot(step))
    finally:
        logger.close()
    bar.close()
    final_state = training_state(max(start_step, config.steps))
    if config.recalibrate_bn:  # exact statistics of every width over fresh training batches
        recalibrate_bn(generator, [next(batches)[0] for _ in range(config.recalibrate_bn)], device=device)
    train_seconds = time.perf_counter() - start

    metrics = evaluate_widths(generator, test_set, generator.widths, device, progress=progress)
    if fid_net is not None:  # FID of every width's held-out outputs against the held-out targets
        from .gan_metrics import fid_widths

        for w, fid in fid_widths(generator, test_set, generator.widths, None, device, net=fid_net).items():
            metrics[width_key(w)]["fid"] = fid
    eval_seconds = time.perf_counter() - start - train_seconds
    say("held-out (%d): %s" % (len(test_set), _summary(metrics)))
    ckpt = {
        "format": FORMAT,
        "generator": {"arch": generator.arch(), "state_dict": cpu_state_dict(generator)},
        "discriminator": {"arch": discriminator.arch(), "state_dict": cpu_state_dict(discriminator)},
        "widths": list(generator.widths),
        "data": meta,
        "train": dict(asdict(config), recipe="slimmable", widths=list(generator.widths),
                      d_layers=discriminator.hparams["n_layers"],
                      seconds=round(train_seconds, 1), eval_seconds=round(eval_seconds, 1),
                      train_images=len(train_set), test_images=len(test_set), history=history,
                      augment=bool(getattr(train_set, "augment", False)),
                      torch=str(torch.__version__), threads=torch.get_num_threads(), device_name=str(device)),
        "metrics": {width_key(w): metrics[width_key(w)] for w in generator.widths},
    }
    ckpt["resume"] = final_state
    return ckpt
