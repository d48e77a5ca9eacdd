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
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..checkpoint import FORMAT
from ..errors import EdgeganError
from ..models import DEFAULT_WIDTHS, ResnetGenerator, SharedTrunkPatchGAN, SlimmablePatchGAN
from ..nn import at_width
from .losses import d_hinge_loss, g_hinge_loss, inplace_distillation
from .metrics import evaluate_widths, width_key
from .recalibrate import recalibrate_bn
from .recipe_options import d_schedule, validate_shared

ADAM_BETAS = (0.5, 0.999)  # pix2pix / SlimGAN


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
    """

    ngf: int = 16
    n_blocks: int = 6
    norm: str = "bn"
    padding: str = "reflect"
    upsample: str = "transposed"
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

    def validate(self):
        if not self.widths or any(not 0.0 < float(w) <= 1.0 for w in self.widths):
            raise EdgeganError("--widths must be multipliers in (0, 1], got %s" % (self.widths,))
        validate_shared(self, ("steps", "batch_size", "ngf", "ndf"))


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


def endless_batches(dataset, batch_size, seed, start=0, rank=0, world_size=1):
    """Shuffled training batches forever (a new seeded permutation each epoch), from batch ``start`` on.

    With ``world_size`` > 1 each rank reads its own shard of every epoch (``DistributedSampler``).
    """
    if world_size > 1:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed,
                                     drop_last=True)
        loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler,
                            drop_last=len(sampler) > batch_size)
        per_epoch = max(1, len(loader))
        epoch, skip = divmod(start, per_epoch)
        while True:
            sampler.set_epoch(epoch)
            it = iter(loader)
            for _ in range(skip):
                _skip_batch(it)
            skip = 0
            yield from it
            epoch += 1
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=len(dataset) > batch_size,
                        generator=torch.Generator().manual_seed(seed))
    while True:
        it = iter(loader)
        for _ in range(min(start, len(loader))):  # resuming: replay the sampler, not the data
            _skip_batch(it)
        start -= min(start, len(loader))
        yield from it


def _skip_batch(it):
    if hasattr(it, "_next_index"):  # single-process loader: draw the indices without loading the images
        try:
            it._next_index()
            it._num_yielded += 1
            return
        except StopIteration:
            return
    next(it, None)


def build_models(config, meta, device):
    """The slimmable generator and its shared-trunk discriminator (one head per width) for ``meta``."""
    if meta["size"] < 8 or meta["size"] % 4:
        raise EdgeganError("--size must be a multiple of 4 and at least 8 (the generator downsamples twice), "
                           "got %d" % meta["size"])
    widths = sorted(float(w) for w in config.widths)
    generator = ResnetGenerator(meta["in_channels"], meta["out_channels"], ngf=config.ngf, n_blocks=config.n_blocks,
                                norm=config.norm, padding=config.padding, upsample=config.upsample, widths=widths)
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


def train_step(generator, discriminator, opt_g, opt_d, inputs, targets, config, per_width=None):
    """One SlimGAN step on a batch; returns the losses (averaged over widths) as floats.

    ``generator`` / ``discriminator`` may be DistributedDataParallel wrappers (see
    ``edgegan.train.slimgan.train_step``); ``per_width``, when a dict, receives ``d/wX``, ``g/wX``
    and ``l1/wX``.
    """
    from .distributed import unwrap

    g_net, d_net = unwrap(generator), unwrap(discriminator)
    widths = g_net.widths  # ascending
    schedule = d_schedule(d_net, widths)  # per width: its head, and the D's width (slimmable D)
    fakes = {}
    for w in reversed(widths):  # widest first
        with at_width(g_net, w):
            fakes[w] = generator(inputs)
    real_pair = torch.cat([inputs, targets], 1)

    d_net.requires_grad_(True)
    opt_d.zero_grad(set_to_none=True)
    d_terms = []
    for (head, d_width), w in zip(schedule, widths):
        with d_width():
            d_terms.append(d_hinge_loss(discriminator(real_pair, head),
                                        discriminator(torch.cat([inputs, fakes[w].detach()], 1), head)))
    loss_d = sum(d_terms)
    loss_d.backward()
    opt_d.step()

    d_net.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    g_terms = []
    for (head, d_width), w in zip(schedule, widths):
        with d_width():
            g_terms.append(g_hinge_loss(d_net(torch.cat([inputs, fakes[w]], 1), head)))
    l1_terms = [F.l1_loss(fakes[w], targets) for w in widths]
    adversarial = sum(g_terms)
    reconstruction = sum(l1_terms)
    distillation = inplace_distillation([fakes[w] for w in widths], config.distill)
    loss_g = adversarial + config.lambda_l1 * reconstruction + config.lambda_distill * distillation
    loss_g.backward()
    opt_g.step()
    d_net.requires_grad_(True)
    if per_width is not None:
        for w, ld, lg, l1 in zip(widths, d_terms, g_terms, l1_terms):
            per_width.update({"d/" + width_key(w): ld.item(), "g/" + width_key(w): lg.item(),
                              "l1/" + width_key(w): l1.item()})
    n = len(widths)
    return {"d": loss_d.item() / n, "g": adversarial.item() / n, "l1": reconstruction.item() / n,
            "distill": distillation.item()}


def _summary(metrics):
    return "  ".join("%s %.2f dB / %.3f" % (k, v["psnr"], v["ssim"]) for k, v in metrics.items())


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
    generator, discriminator = build_models(config, meta, device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=ADAM_BETAS)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr, betas=ADAM_BETAS)
    start_step, history, prior_seconds = 0, [], 0.0
    if resume:
        saved, state = load_resume(resume)
        start_step = restore(saved, state, generator, discriminator, opt_g, opt_d)
        history = list(state.get("history", []))
        prior_seconds = float(saved.get("train", {}).get("seconds", 0.0))
    if info.enabled:
        torch.manual_seed(config.seed + 1000003 * info.rank + start_step)
    g_train = distributed.wrap(generator, info)
    d_train = distributed.wrap(discriminator, info)
    batches = endless_batches(train_set, config.batch_size, config.seed, start=start_step, rank=info.rank,
                              world_size=info.world_size)
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
        ckpt["resume"] = resume_state(step, opt_g, opt_d, history)
        return ckpt

    start = time.perf_counter() - prior_seconds
    bar = tqdm(range(start_step + 1, config.steps + 1), desc="slimmable", disable=not progress, dynamic_ncols=True,
               initial=start_step, total=config.steps)
    generator.train()
    discriminator.train()
    try:
        for step in bar:
            inputs, targets = (t.to(device) for t in next(batches))
            per_width = {}
            losses = train_step(g_train, d_train, opt_g, opt_d, inputs, targets, config, per_width=per_width)
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
    final_state = resume_state(max(start_step, config.steps), opt_g, opt_d, history)
    if config.recalibrate_bn:  # exact statistics of every width over fresh training batches
        recalibrate_bn(generator, [next(batches)[0] for _ in range(config.recalibrate_bn)], device=device)
    train_seconds = time.perf_counter() - start

    metrics = evaluate_widths(generator, test_set, generator.widths, device, progress=progress)
    eval_seconds = time.perf_counter() - start - train_seconds
    say("held-out (%d): %s" % (len(test_set), _summary(metrics)))
    ckpt = {
        "format": FORMAT,
        "generator": {"arch": generator.arch(), "state_dict": generator.cpu().state_dict()},
        "discriminator": {"arch": discriminator.arch(), "state_dict": discriminator.cpu().state_dict()},
        "widths": list(generator.widths),
        "data": meta,
        "train": dict(asdict(config), recipe="slimmable", widths=list(generator.widths),
                      d_layers=discriminator.hparams["n_layers"],
                      seconds=round(train_seconds, 1), eval_seconds=round(eval_seconds, 1),
                      train_images=len(train_set), test_images=len(test_set), history=history,
                      torch=str(torch.__version__), threads=torch.get_num_threads(), device_name=str(device)),
        "metrics": {width_key(w): metrics[width_key(w)] for w in generator.widths},
    }
    ckpt["resume"] = final_state
    return ckpt
