"""Search a once-for-all supernet for the best sub-networks under a compute budget (GAN Compression).

The candidate space is one list of channel counts per slot of the model (``channel_slots``):
multiples of ``step`` (8) up to the slot's maximum, or choices given by the caller. A candidate is a
``SubnetConfig(channels=…)``; its cost is counted with ``edgegan.subnet.cost`` (MACs, params; cached
per config) and, when a latency table measured on the target is given, its latency is read from
the table. Candidates over any budget are never evaluated nor returned.

Small spaces are searched exhaustively; larger ones with a seeded evolutionary search (mutation +
crossover, as in once-for-all). Quality comes from a callback (higher is better, e.g. PSNR on
held-out pairs: ``psnr_evaluator``). The result is the Pareto front of cost vs quality. The pairs that
choose the front should be a validation split (``edgegan.data.split.validation_split``); ``report_front``
then scores the front on other pairs (the test split), which did not choose it.

Latency table (JSON), either per config::

    {"unit": "ms", "configs": {"<config name>": 12.5, ...}}
    {"unit": "ms", "configs": [{"channels": {"stem": 8, ...}, "ms": 12.5}, ...]}

or per layer (additive model: ``base_ms`` + one entry per slot, linear between measured counts)::

    {"unit": "ms", "base_ms": 3.0, "layers": {"stem": {"8": 0.4, "16": 0.7}, ...}}

A config the table cannot price is treated as over a latency budget (it cannot be verified).
"""

import itertools
import json
import math
import random
from collections import OrderedDict

import torch

from ..nn.width import at_width, channel_slots
from ..subnet import SubnetConfig, cost as count_cost


# --- the space -----------------------------------------------------------------------------

class SearchSpace(object):
    """Per-slot channel choices (slot → sorted list of counts)."""

    def __init__(self, choices):
        self.choices = OrderedDict((str(k), sorted(set(int(c) for c in v))) for k, v in choices.items())
        for k, v in self.choices.items():
            if not v:
                raise ValueError("slot %r has no channel choices" % k)

    @classmethod
    def from_model(cls, model, step=8, choices=None, fixed=None):
        """Multiples of ``step`` up to each slot's maximum (the maximum included).

        ``choices``: slot → list of counts (overrides), or a list of ratios in (0, 1] for every slot.
        ``fixed``: slot → count for slots kept constant.
        """
        slots = channel_slots(model)
        out = OrderedDict()
        for name, slot in slots.items():
            m = slot.max_channels
            if isinstance(choices, dict) and name in choices:
                c = [int(x) for x in choices[name]]
            elif isinstance(choices, (list, tuple)):
                c = [max(1, int(round(float(r) * m))) for r in choices]
            else:
                c = list(range(step, m + 1, step)) or [m]
                if c[-1] != m:
                    c.append(m)
            bad = [x for x in c if not 1 <= x <= m]
            if bad:
                raise ValueError("slot %r: choices %s outside 1..%d" % (name, bad, m))
            out[name] = c
        for name, c in (fixed or {}).items():
            if name not in out:
                raise ValueError("unknown slot %r" % name)
            out[name] = [int(c)]
        return cls(out)

    @property
    def size(self):
        return math.prod(len(v) for v in self.choices.values())

    def config(self, values):
        return SubnetConfig(channels=OrderedDict(zip(self.choices, values)))

    def all(self):
        for values in itertools.product(*self.choices.values()):
            yield self.config(values)

    def sample(self, rng):
        return self.config([rng.choice(v) for v in self.choices.values()])

    def largest(self):
        return self.config([v[-1] for v in self.choices.values()])

    def smallest(self):
        return self.config([v[0] for v in self.choices.values()])

    def mutate(self, config, rng, prob):
        return self.config([rng.choice(v) if rng.random() < prob else config.channels[k]
                            for k, v in self.choices.items()])

    def crossover(self, a, b, rng):
        return self.config([rng.choice((a.channels[k], b.channels[k])) for k in self.choices])


# --- latency table ----------------------------------------------------------------------------

class LatencyTable(object):
    """Latency (ms) of a config read from measurements on the target (see the module docstring)."""

    def __init__(self, data):
        self.data = data
        self.unit = data.get("unit", "ms")
        if self.unit != "ms":
            raise ValueError("latency table unit must be ms, got %r" % self.unit)
        self.by_name = {}
        self.by_channels = {}
        configs = data.get("configs", {})
        if isinstance(configs, dict):
            self.by_name = {str(k): float(v) for k, v in configs.items()}
        else:
            for entry in configs:
                ms = float(entry["ms"])
                if "channels" in entry:
                    self.by_channels[self._key(entry["channels"])] = ms
                if "name" in entry:
                    self.by_name[str(entry["name"])] = ms
        self.base_ms = float(data.get("base_ms", 0.0))
        self.layers = {slot: sorted((int(c), float(ms)) for c, ms in table.items())
                       for slot, table in data.get("layers", {}).items()}
        for slot, points in self.layers.items():
            counts = [c for c, _ in points]
            if len(set(counts)) < len(counts):
                raise ValueError("latency table layer %r lists a channel count twice (%s); keep one entry per count"
                                 % (slot, ", ".join(str(c) for c in sorted(set(counts)) if counts.count(c) > 1)))
        if not (self.by_name or self.by_channels or self.layers):
            raise ValueError("latency table has neither 'configs' nor 'layers'")

    @classmethod
    def load(cls, path):
        with open(path) as f:
            return cls(json.load(f))

    @staticmethod
    def _key(channels):
        return tuple(sorted((str(k), int(v)) for k, v in channels.items()))

    @staticmethod
    def _interp(points, c):
        for (c0, m0), (c1, m1) in zip(points, points[1:]):
            if c0 <= c <= c1:
                return m0 + (m1 - m0) * (c - c0) / float(c1 - c0)
        if len(points) == 1 and points[0][0] == c:
            return points[0][1]
        return None

    def lookup(self, config):
        """Latency of ``config`` in ms, or ``None`` when the table cannot price it."""
        config = SubnetConfig.coerce(config)
        if config.name in self.by_name:
            return self.by_name[config.name]
        if config.channels is not None and self._key(config.channels) in self.by_channels:
            return self.by_channels[self._key(config.channels)]
        if self.layers and config.channels is not None:
            total = self.base_ms
            for slot, c in config.channels.items():
                if slot not in self.layers:
                    return None
                ms = self._interp(self.layers[slot], c)
                if ms is None:
                    return None
                total += ms
            return total
        return None


# --- search ---------------------------------------------------------------------------------

class Candidate(object):
    """A config with its cost, its ``quality`` (the search's score) and, once reported, ``test_quality``
    (``report_front``: the same measure on pairs that did not choose it)."""

    def __init__(self, config, macs, params, ms=None, quality=None):
        self.config, self.macs, self.params, self.ms, self.quality = config, macs, params, ms, quality
        self.test_quality = None

    def to_dict(self):
        return {"config": self.config.to_dict(), "macs": self.macs, "params": self.params,
                "ms": self.ms, "quality": self.quality, "test_quality": self.test_quality}

    def __repr__(self):
        return "Candidate(%s, macs=%d, ms=%s, quality=%s)" % (dict(self.config.channels), self.macs, self.ms, self.quality)


class SearchResult(object):
    def __init__(self, front, evaluated, mode, cost_key):
        self.front = front
        self.evaluated = evaluated
        self.mode = mode
        self.cost_key = cost_key

    @property
    def best(self):
        """The highest-quality candidate under budget (the last point of the front)."""
        return self.front[-1] if self.front else None

    def to_dict(self):
        return {"mode": self.mode, "cost": self.cost_key, "front": [c.to_dict() for c in self.front],
                "evaluated": len(self.evaluated)}


def pareto_front(candidates, cost_key="macs"):
    """Non-dominated candidates (lower cost, higher quality), sorted by increasing cost."""
    pts = sorted(candidates, key=lambda c: (getattr(c, cost_key), -c.quality))
    front, best_q = [], -float("inf")
    for c in pts:
        if c.quality > best_q:
            front.append(c)
            best_q = c.quality
    return front


class Searcher(object):
    """Costs (cached per config), budget checks and quality evaluations (cached) for one model."""

    def __init__(self, model, evaluate, input_shape, budget_macs=None, budget_ms=None, latency_table=None,
                 cost_cache=None):
        if budget_ms is not None and latency_table is None:
            raise ValueError("a latency budget needs a latency table measured on the target")
        if isinstance(latency_table, str):
            latency_table = LatencyTable.load(latency_table)
        elif isinstance(latency_table, dict):
            latency_table = LatencyTable(latency_table)
        self.model, self.evaluate_fn, self.input_shape = model, evaluate, tuple(input_shape)
        self.budget_macs, self.budget_ms, self.table = budget_macs, budget_ms, latency_table
        # MACs/params of a config depend only on the architecture: a caller may share this cache
        # (config → {"macs", "params"}) across searches of the same model and input shape
        self._macs = cost_cache if cost_cache is not None else {}
        self._quality = {}

    def cost(self, config):
        if config not in self._macs:
            self._macs[config] = count_cost(self.model, self.input_shape, config)
        c = self._macs[config]
        ms = self.table.lookup(config) if self.table is not None else None
        return Candidate(config, c["macs"], c["params"], ms)

    def feasible(self, config):
        if self.budget_ms is not None:  # a table lookup is cheap: check it before counting MACs
            ms = self.table.lookup(config)
            if ms is None or ms > self.budget_ms:
                return False
        if self.budget_macs is not None and self.cost(config).macs > self.budget_macs:
            return False
        return True

    def evaluate(self, config):
        if config not in self._quality:
            was_training = self.model.training
            self.model.eval()
            with torch.no_grad():
                q = float(self.evaluate_fn(config))
            self.model.train(was_training)
            self._quality[config] = q
        c = self.cost(config)
        return Candidate(c.config, c.macs, c.params, c.ms, self._quality[config])


def _sample_feasible(searcher, space, rng, tries):
    for _ in range(tries):
        cfg = space.sample(rng)
        if searcher.feasible(cfg):
            return cfg
    return None


def search(model, evaluate, input_shape, budget_macs=None, budget_ms=None, latency_table=None, space=None,
           step=8, choices=None, mode="auto", exhaustive_limit=256, population=16, generations=8,
           parent_ratio=0.25, mutation_ratio=0.5, mutate_prob=0.2, seed=0, max_tries=200, cost_cache=None,
           log=None):
    """Search ``model``'s sub-networks; returns a ``SearchResult`` whose ``front`` is the Pareto front under budget.

    ``evaluate(config) -> float``: quality of the sub-network (higher is better), called in eval mode.
    ``mode``: ``exhaustive``, ``evolution`` or ``auto`` (exhaustive when the space has at most
    ``exhaustive_limit`` configs). ``cost_cache``: a dict shared between searches of the same model
    and input shape (MAC counting extracts each sub-network, which dominates small searches).
    """
    space = space or SearchSpace.from_model(model, step=step, choices=choices)
    searcher = Searcher(model, evaluate, input_shape, budget_macs, budget_ms, latency_table, cost_cache)
    if mode == "auto":
        mode = "exhaustive" if space.size <= exhaustive_limit else "evolution"
    rng = random.Random(seed)
    evaluated = OrderedDict()

    def consider(cfg):
        if cfg not in evaluated and searcher.feasible(cfg):
            evaluated[cfg] = searcher.evaluate(cfg)
        return evaluated.get(cfg)

    if mode == "exhaustive":
        for cfg in space.all():
            consider(cfg)
    elif mode == "evolution":
        pop = []
        for seed_cfg in (space.smallest(),):  # the cheapest config anchors the front if feasible
            if consider(seed_cfg):
                pop.append(evaluated[seed_cfg])
        for _ in range(population * 4):
            if len(pop) >= population:
                break
            cfg = _sample_feasible(searcher, space, rng, max_tries)
            if cfg is None:
                break
            if cfg not in evaluated:
                pop.append(consider(cfg))
        n_parents = max(1, int(round(parent_ratio * population)))
        n_mutate = int(round(mutation_ratio * population))
        for gen in range(generations):
            if not pop:
                break
            parents = sorted(pop, key=lambda c: -c.quality)[:n_parents]
            children = []
            for i in range(population - n_parents):
                for _ in range(max_tries):
                    if i < n_mutate:
                        cfg = space.mutate(rng.choice(parents).config, rng, mutate_prob)
                    else:
                        cfg = space.crossover(rng.choice(parents).config, rng.choice(parents).config, rng)
                    if searcher.feasible(cfg):
                        children.append(consider(cfg))
                        break
            pop = parents + children
            if log:
                log("generation %d: best %.4f" % (gen, parents[0].quality))
    else:
        raise ValueError("mode must be auto, exhaustive or evolution, got %r" % mode)
    cost_key = "ms" if searcher.table is not None and budget_ms is not None else "macs"
    cands = list(evaluated.values())
    if cost_key == "ms":
        cands = [c for c in cands if c.ms is not None]
    return SearchResult(pareto_front(cands, cost_key), cands, mode, cost_key)


@torch.no_grad()
def recalibrated_subnet(model, config, batches):
    """A plain copy of ``model`` at ``config`` whose BatchNorm statistics are re-estimated on ``batches``.

    A once-for-all supernet's BatchNorm statistics belong to no single sub-network (and a per-slot
    count that is not a trained width slices the next wider BN): GAN Compression re-estimates them
    per candidate before evaluating it. The supernet itself is left untouched.
    """
    from ..subnet import extract

    batches = list(batches)
    sub = extract(model, config, input_shape=(1,) + tuple(batches[0].shape[1:]), fold_bn=False)
    norms = [m for m in sub.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    sub.train()
    for x in batches:
        sub(x)
    return sub.eval()


ENGINES = ("torch", "onnxruntime")


@torch.no_grad()
def measure_latency_table(model, configs, input_shape, warmup=100, runs=100, device="cpu", engine="torch",
                          threads=None, rounds=1, opset=17, log=None):
    """A per-config latency table measured here (GAN Compression's protocol: batch 1, ``warmup`` runs,
    then the mean of ``runs``), as ``LatencyTable`` reads it (``{"unit": "ms", "configs": [{"channels":
    {...}, "ms": ...}]}``). On a target, measure its runtime instead and write the same JSON.

    ``engine``: ``torch`` (eager, on ``device``) or ``onnxruntime`` (each sub-network exported to ONNX at
    ``opset`` with BatchNorm folded, as ``edgegan build`` does, and run on ORT's CPU provider: the
    deployment latency on a CPU). ``threads``: intra-op threads of that engine (default: its own).
    ``rounds`` > 1: every config is measured ``rounds`` times, round-robin, and its ``ms`` is the
    median of the round means (robust to a machine shared with other jobs); ``rounds_ms`` keeps them.
    """
    import time

    from ..subnet import extract

    if engine not in ENGINES:
        raise ValueError("engine must be one of %s, got %r" % (", ".join(ENGINES), engine))
    if engine == "onnxruntime" and str(device) != "cpu":
        raise ValueError("the onnxruntime engine measures on the CPU; use engine='torch' for device %r" % device)
    if rounds < 1 or runs < 1:
        raise ValueError("runs and rounds must be at least 1")
    configs = [SubnetConfig.coerce(c) for c in configs]
    x = torch.rand(tuple(input_shape), generator=torch.Generator().manual_seed(0)) * 2.0 - 1.0
    runners = []
    tmp = None
    old_threads = torch.get_num_threads()
    try:
        if engine == "onnxruntime":
            import os
            import tempfile

            import onnxruntime as ort

            from ..targets.onnx import INPUT_NAME, compile_onnx

            tmp = tempfile.TemporaryDirectory(prefix="edgegan-latency-")
            opts = ort.SessionOptions()
            if threads:
                opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
            feed = {INPUT_NAME: x.numpy()}
            for i, cfg in enumerate(configs):
                path = os.path.join(tmp.name, "%d.onnx" % i)
                compile_onnx(extract(model, cfg, input_shape=input_shape), input_shape, path, opset=opset)
                session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
                runners.append(lambda s=session: s.run(None, feed))
        else:
            if threads:
                torch.set_num_threads(int(threads))
            x = x.to(device)
            sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
            for cfg in configs:
                sub = extract(model, cfg, input_shape=input_shape).to(device).eval()
                runners.append(lambda s=sub: (s(x), sync()))
        times = [[] for _ in configs]
        for r in range(rounds):
            for i, run in enumerate(runners):
                for _ in range(warmup):
                    run()
                t0 = time.perf_counter()
                for _ in range(runs):
                    run()
                times[i].append((time.perf_counter() - t0) * 1000.0 / runs)
            if log:
                log("latency round %d/%d: %d configs" % (r + 1, rounds, len(configs)))
    finally:
        torch.set_num_threads(old_threads)
        if tmp is not None:
            tmp.cleanup()
    entries = []
    for cfg, ms in zip(configs, times):
        srt = sorted(ms)
        med = srt[len(srt) // 2] if len(srt) % 2 else 0.5 * (srt[len(srt) // 2 - 1] + srt[len(srt) // 2])
        entry = {"name": cfg.name, "ms": med}
        if rounds > 1:
            entry["rounds_ms"] = ms
        if cfg.channels is not None:
            entry["channels"] = dict(cfg.channels)
        entries.append(entry)
    return {"unit": "ms", "device": str(device), "engine": engine,
            "protocol": {"batch": int(input_shape[0]), "warmup": warmup, "runs": runs, "rounds": rounds,
                         "threads": threads, "latency": "mean of runs after warm-up" +
                         (", median over round-robin rounds" if rounds > 1 else "")},
            "configs": entries}


def report_front(model, candidates, evaluate):
    """Score ``candidates`` (a front) with ``evaluate(config)`` — the search's measure on other pairs, e.g. the
    test split — into their ``test_quality`` (eval mode, no gradients); returns them."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for c in candidates:
                c.test_quality = float(evaluate(c.config))
    finally:
        model.train(was_training)
    return candidates


def select_front(front, n=1):
    """At most ``n`` candidates of a Pareto ``front`` (sorted by cost), spread evenly along it by cost rank;
    the best (last, highest quality) is always included. ``n`` ≤ 0 or ``None``: the whole front."""
    front = list(front)
    if not front or not n or n <= 0 or n >= len(front):
        return front
    if n == 1:
        return [front[-1]]
    idx = sorted(set(int(round(i * (len(front) - 1) / float(n - 1))) for i in range(n)))
    return [front[i] for i in idx]


def config_entries(candidates):
    """JSON-able ``{"config", "quality", "test_quality", "macs", "params", "ms"}`` entries (what ``edgegan
    build`` reads from a checkpoint's ``"configs"`` or a ``--configs`` file)."""
    return [{"config": c.config.to_dict(), "quality": c.quality, "test_quality": c.test_quality, "macs": c.macs,
             "params": c.params, "ms": c.ms} for c in candidates]


def search_checkpoint_configs(model, inputs, targets, input_shape, budget_macs=None, n_configs=1, step=8,
                              choices=None, mode="auto", population=16, generations=8, seed=0, recalibrate=None,
                              log=None, test=None):
    """Search ``model`` (a once-for-all supernet) on validation ``inputs`` → ``targets`` (PSNR) and pick
    ``n_configs`` of the Pareto front under ``budget_macs`` (``select_front``); with ``test`` (``(inputs,
    targets)`` of other pairs, e.g. the test split) the whole front is also scored there (``test_quality``).

    Returns ``(SearchResult, entries)``, ``entries`` as ``config_entries`` writes them: ready to be
    stored as a checkpoint's ``"configs"`` so that ``edgegan build --checkpoint`` builds them.
    """
    space = SearchSpace.from_model(model, step=step, choices=choices)
    result = search(model, psnr_evaluator(model, inputs, targets, recalibrate=recalibrate), input_shape,
                    budget_macs=budget_macs, space=space, mode=mode, population=population,
                    generations=generations, seed=seed, log=log)
    if test is not None:
        report_front(model, result.front, psnr_evaluator(model, test[0], test[1], recalibrate=recalibrate))
    return result, config_entries(select_front(result.front, n_configs))


def psnr_evaluator(model, inputs, targets, data_range=2.0, recalibrate=None, batch_size=100):
    """A quality callback: mean PSNR (dB) of ``model`` at a config on held-out ``inputs`` → ``targets``
    (per image, then averaged; run ``batch_size`` images at a time).

    ``recalibrate``: batches of inputs on which each candidate's BatchNorm statistics are re-estimated
    first (``recalibrated_subnet``); ``None`` evaluates the supernet's statistics as they are.
    """
    import contextlib

    import numpy as np

    from .metrics import psnr_per_image

    def evaluate(config):
        if recalibrate is not None:
            net, ctx = recalibrated_subnet(model, config, recalibrate), contextlib.nullcontext()
        else:
            net, ctx = model, at_width(model, config)
        scores = []
        with ctx:
            for i in range(0, len(inputs), batch_size):
                scores.append(psnr_per_image(net(inputs[i:i + batch_size]), targets[i:i + batch_size], data_range))
        return float(np.concatenate(scores).mean())

    return evaluate


__all__ = ["ENGINES", "Candidate", "LatencyTable", "SearchResult", "SearchSpace", "Searcher", "config_entries",
           "pareto_front", "measure_latency_table", "psnr_evaluator", "recalibrated_subnet", "report_front", "search",
           "search_checkpoint_configs", "select_front"]
