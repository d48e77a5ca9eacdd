"""``edgegan build``: checkpoint → sub-networks → per-target artifacts → bundle.

The profile names a compiler (``edgegan.targets.registry``); for each width the sub-network is
extracted, rewritten as the profile asks, compiled, and measured against PyTorch; the compiler then
adds what its target needs (for TensorRT, the steps that build engines on the device).

A noise → image checkpoint (``edgegan train slimgan``: ``data.input.content == "noise"``) builds the
same way with the inputs ``noise`` float32 [1, nz] and, when class-conditional, ``label`` int64 [1]
(``edgegan.runtime.noise``); its parity runs on fixed N(0, 1) noise with every class in turn, and its
INT8 calibration on that distribution. Compilers say whether they take such models (``noise_inputs``).
"""

import datetime
import os
import sys

from tqdm import tqdm

from .. import __version__
from ..checkpoint import default_checkpoint, load_generator
from ..errors import TargetError
from ..runtime.bundle import FORMAT, BundleWriter, sha256_file
from ..runtime.noise import LABEL, NOISE, STANDARD_NORMAL, n_classes, sample_feeds
from ..runtime.policy import manifest_policy
from ..subnet import SubnetConfig, cost, extract
from . import onnx as onnx_compiler
from . import runtime_wheel
from ..calibrate import calibration_set, noise_calibration_set
from ..errors import warn
from .buildlog import BUILD_LOG, capture_output, log_lines
from .profiles import load_profile, parity_threshold, shipped_profiles
from .quality import DEFAULT_IMAGES, artifact_quality, checkpoint_quality, held_out_pairs
from .registry import get_compiler
from .rewrites import apply_padding_policy


def _parse_widths(widths, trained):
    if widths is None:
        return list(trained)
    chosen = sorted(set(float(w) for w in widths))
    missing = [w for w in chosen if w not in trained]
    if missing:
        raise TargetError("width(s) %s were not trained in this checkpoint; it has %s"
                          % (", ".join("%g" % w for w in missing), ", ".join("%g" % w for w in trained)))
    return chosen


def _load_configs(configs):
    """``[(SubnetConfig, search quality or None)]`` from a JSON file path, an ``edgegan search --out``
    front (``{"front": [{"config": {...}, "quality": ...}]}``), ``{"configs": [...]}``, or a list of
    configs (``SubnetConfig``, ``{"name", "channels"}`` / ``{"width"}`` dicts, widths)."""
    import json

    if isinstance(configs, str):
        try:
            with open(configs) as f:
                configs = json.load(f)
        except (OSError, ValueError) as e:
            raise TargetError("cannot read configs from %s (%s); pass the JSON that `edgegan search --out` "
                              "writes" % (configs, e))
    if isinstance(configs, dict):
        if "front" in configs:
            configs = configs["front"]
        elif "configs" in configs:
            configs = configs["configs"]
        else:
            raise TargetError("configs JSON needs a \"front\" (from `edgegan search --out`) or \"configs\" list")
    out, seen = [], set()
    for entry in configs or []:
        quality = None
        if isinstance(entry, dict) and "config" in entry:
            # the test-split score when the search reported one (its validation score chose the config)
            quality = entry.get("test_quality")
            if quality is None:
                quality = entry.get("quality")
            entry = entry["config"]
        try:
            config = SubnetConfig.coerce(entry)
        except (TypeError, ValueError) as e:
            raise TargetError("bad config %r: %s" % (entry, e))
        if config in seen:
            continue
        seen.add(config)
        out.append((config, quality))
    if not out:
        raise TargetError("no configs to build")
    names = [c.name for c, _ in out]
    if len(set(names)) != len(names):
        raise TargetError("config names are not unique: %s" % ", ".join(names))
    return out


def _image_spec(data, size, name, channels, part, content):
    info = dict(data.get(part, {}))
    return {"name": name, "shape": [1, channels, size, size], "layout": "NCHW", "dtype": "float32",
            "range": list(info.get("range", [-1.0, 1.0])), "content": info.get("content", content)}


def _output_spec(data, size):
    return _image_spec(data, size, onnx_compiler.OUTPUT_NAME, data["out_channels"], "output", "image")


def _io_spec(data, size):
    inp = _image_spec(data, size, onnx_compiler.INPUT_NAME, data["in_channels"], "input", "edges")
    if data.get("edges"):
        inp["edges"] = dict(data["edges"])
    return inp, _output_spec(data, size)


def is_noise_checkpoint(data):
    """Whether a checkpoint's ``data`` describes a noise → image generator (SlimGAN) rather than an image model."""
    return (data.get("input") or {}).get("content") == NOISE or data.get("in_channels") == 0


def noise_input_specs(data, generator=None):
    """The manifest specs of a noise generator's inputs, in graph order: ``noise`` float32 [1, nz] drawn
    from N(0, 1), then ``label`` int64 [1] in [0, n_classes) when it is class-conditional."""
    nz = data.get("nz") or ((data.get("input") or {}).get("shape") or [None])[-1] or getattr(generator, "nz", None)
    classes = data.get("n_classes", getattr(generator, "n_classes", 0)) or 0
    if not nz:
        raise TargetError("this noise checkpoint records no noise size (data.nz); re-save it with `edgegan train "
                          "slimgan`")
    specs = [{"name": NOISE, "shape": [1, int(nz)], "layout": "NC", "dtype": "float32", "content": NOISE,
              "distribution": STANDARD_NORMAL}]
    if classes:
        specs.append({"name": LABEL, "shape": [1], "layout": "N", "dtype": "int64", "content": LABEL,
                      "n_classes": int(classes), "range": [0, int(classes) - 1]})
    return specs


def noise_targets():
    """The shipped targets whose compiler builds noise generators."""
    names = []
    for name in shipped_profiles():
        try:
            if get_compiler(load_profile(name)["compiler"]).noise_inputs:
                names.append(name)
        except TargetError:
            continue
    return names


def _status(progress, text):
    """A progress line for a phase before the per-variant bar, on a terminal's stderr only (like the bar)."""
    if progress and getattr(sys.stderr, "isatty", lambda: False)():
        print(text, file=sys.stderr)


def int8_targets():
    """The shipped targets that build INT8."""
    names = []
    for name in shipped_profiles():
        try:
            if "int8" in load_profile(name)["build"]["precisions"]:
                names.append(name)
        except TargetError:
            continue
    return names


def _warn_weak_calibration(calib, profile):
    """Say when INT8 calibration or its quality gate rests on fewer inputs than the profile asks for."""
    want, want_held = int(profile["calibrate"]["samples"]), int(profile["calibrate"]["held_out"])
    got, got_held = len(calib.inputs), len(calib.held_out)
    if got < want or got_held < want_held:
        warn("INT8 calibrates on %d input%s and gates quality on %d held-out input%s (%s), where the profile asks "
             "for %d and %d: activation ranges and the quality gate rest on too little data; give --calibration "
             "a folder of at least %d real input images" % (got, "" if got == 1 else "s", got_held,
                                                            "" if got_held == 1 else "s", calib.source, want,
                                                            want_held, want + want_held))


def _refuse_noise_target(profile, compiler, specs):
    if compiler.noise_inputs:
        return
    raise TargetError("%s (compiler %s) cannot build a noise → image generator (inputs %s): its converter takes "
                      "one image input. Targets that build these checkpoints: %s" % (
                          profile["name"], compiler.name,
                          ", ".join("%s %s %s" % (s["name"], s["shape"], s["dtype"]) for s in specs),
                          ", ".join(noise_targets())))


def build_bundle(target, checkpoint=None, out=None, widths=None, precision=None, force=False,
                 n_parity_inputs=8, progress=True, calibration=None, observer=None, configs=None,
                 quality_images=DEFAULT_IMAGES, data_root=None, log_third_party=True,
                 with_runtime=False):
    """Build a bundle for ``target``; returns ``(bundle_dir, manifest)``.

    ``configs``: build per-slot channel configs instead of widths (a JSON path, e.g. the front that
    `edgegan search --out` writes, or a list; see ``_load_configs``); each variant is named by its
    config and carries ``"width": None`` and its ``"channels"``. Without ``widths`` and ``configs``,
    a checkpoint's own ``"configs"`` list (if any) is built, else every trained width.

    ``calibration``: for ``int8``, a folder of real input images (default: the checkpoint's training
    data; a noise generator calibrates on its input distribution, N(0, 1) noise and uniform labels);
    ``observer`` overrides the profile's ``[calibrate] observer``.

    ``quality_images``: held-out pairs of the checkpoint's data set (read from ``data_root`` for
    Fashion-MNIST) that each variant's artifact is scored on (``edgegan.targets.quality``); 0 keeps the
    checkpoint's own metrics. ``log_third_party``: what converters print goes to ``build.log`` in the
    bundle (``edgegan.targets.buildlog``) instead of the terminal.
    ``with_runtime``: put the ``edgegan-runtime`` wheel into the bundle's ``wheels/`` (``runtime_wheel``), so
    that a device installs the runtime offline from the bundle; recorded as the manifest's ``runtime_wheel``.
    """
    profile = load_profile(target)
    compiler = get_compiler(profile["compiler"])
    precision = precision or profile["build"]["precision"]
    if precision not in profile["build"]["precisions"]:
        raise TargetError("%s does not support %s; it supports %s" % (
            profile["name"], precision, ", ".join(profile["build"]["precisions"])))
    out = out or "edgegan-%s" % profile["name"]
    BundleWriter(out, force=force).check()  # an existing or unwritable --out is refused before any work
    if precision != "int8":
        for flag, value in (("--calibration", calibration), ("--observer", observer)):
            if value is not None:
                warn("%s is read only by int8 builds; this %s build ignores it (pass --precision int8 on a target "
                     "that offers it: %s)" % (flag, precision, ", ".join(int8_targets()) or "none"))
    checkpoint = checkpoint if checkpoint is not None else default_checkpoint()
    _status(progress, "build: loading %s" % checkpoint)
    gen, ckpt = load_generator(checkpoint)
    data = ckpt["data"]
    size = int(data["size"])
    input_specs = example = None
    if is_noise_checkpoint(data):
        input_specs = noise_input_specs(data, gen)
        _refuse_noise_target(profile, compiler, input_specs)
        output_spec = _output_spec(data, size)
        input_spec = input_specs[0]
        compiler.set_io(input_spec, output_spec, inputs=input_specs)
        example = compiler.example_inputs()
    else:
        input_spec, output_spec = _io_spec(data, size)
        compiler.set_io(input_spec, output_spec)
    shape = tuple(input_spec["shape"])
    if configs is not None and widths is not None:
        raise TargetError("give widths or configs, not both")
    if configs is None and widths is None and ckpt.get("configs"):
        configs = ckpt["configs"]
    if configs is not None:
        chosen = _load_configs(configs)
    else:
        chosen = [(SubnetConfig(width=w), None) for w in _parse_widths(widths, [float(w) for w in ckpt["widths"]])]
    export = profile["export"]
    data_range = output_spec["range"][1] - output_spec["range"][0]
    if input_specs:  # fixed noise, every class in turn (all of them when there are fewer than the inputs)
        classes = n_classes(input_specs)
        inputs = sample_feeds(input_specs, max(n_parity_inputs, classes), seed=0)
        synthetic = "fixed N(0, 1) noise (seed 0)" + (", labels 0..%d in turn" % (classes - 1) if classes else "")
    else:
        inputs = onnx_compiler.parity_inputs(shape, input_spec["range"], n=n_parity_inputs)
        synthetic = "fixed synthetic (seed 0)"
    metrics = ckpt.get("metrics", {})
    if isinstance(metrics.get("widths"), dict):  # SlimGAN: {"widths": {"w0.5": {"fd_fmnist", ...}}, "mic": ...}
        metrics = metrics["widths"]
    calib = None
    if precision == "int8":
        if observer:
            profile["calibrate"]["observer"] = observer
        if input_specs:
            if calibration is not None:
                raise TargetError("a noise generator calibrates INT8 on its own input distribution (N(0, 1) noise and "
                                  "uniform labels); --calibration takes no images for it")
            calib = noise_calibration_set(input_specs, n=profile["calibrate"]["samples"],
                                          n_held_out=profile["calibrate"]["held_out"])
        else:
            _status(progress, "build: reading INT8 calibration images (%s)" % (calibration or "the training data"))
            calib = calibration_set(data, input_spec, source=calibration, n=profile["calibrate"]["samples"],
                                    n_held_out=profile["calibrate"]["held_out"])
        calib.output_range = data_range
        _warn_weak_calibration(calib, profile)
    if not input_specs and quality_images:
        _status(progress, "build: reading up to %d held-out pairs to score each artifact on" % quality_images)
    held_out, no_quality = (None, "a noise → image generator is scored by FD-FMNIST in `edgegan eval`") \
        if input_specs else held_out_pairs(ckpt, quality_images, data_root)

    with BundleWriter(out, force=force) as writer:
        wheel = runtime_wheel.add_to_bundle(writer.path) if with_runtime else None  # first: fail before compiling
        log = os.path.join(writer.path, BUILD_LOG)
        with capture_output(log, enabled=log_third_party) as terminal:
            variants = []
            for config, search_quality in tqdm(chosen, desc="build %s" % profile["name"], unit="variant",
                                               disable=None if progress else True, file=terminal):
                try:
                    sub = extract(gen, config, input_shape=None if example else shape, example_inputs=example)
                except ValueError as e:
                    raise TargetError("%s: %s" % (config.name, e))
                apply_padding_policy(sub, export["padding"])
                filename = config.name + compiler.extension
                path = os.path.join(writer.path, filename)
                extra = compiler.compile(sub, shape, path, profile, precision, calibration=calib) or {}
                # INT8 is calibrated for the model's input distribution: its parity is measured on real
                # held-out inputs; fp32/fp16 artifacts on the fixed synthetic inputs
                checked = calib.held_out if calib is not None else inputs
                parity = compiler.parity(path, sub, checked, data_range, profile, precision)
                parity["inputs"] = calib.source + " (held out)" if calib is not None else synthetic
                min_psnr = parity_threshold(profile, parity.get("measured_precision", precision))
                # psnr_db None: the artifact cannot run here (Core ML off macOS)
                if parity["psnr_db"] is not None and parity["psnr_db"] < min_psnr:
                    raise TargetError("%s: parity %.1f dB (%s) is below the profile's %.1f dB; the compiled "
                                      "artifact does not compute the model's function"
                                      % (config.name, parity["psnr_db"], compiler.name, min_psnr))
                variant = {"name": config.name, "width": config.width,
                           "channels": dict(config.channels) if config.channels is not None else None,
                           "file": filename, "format": compiler.extension.lstrip("."), "precision": precision,
                           "parity": parity, "size_bytes": os.path.getsize(path)}
                variant.update(cost(sub, example_inputs=example) if example else cost(sub, shape))
                variant.update(extra)
                if precision == "fp16":
                    variant["parity_fp16_emulated"] = onnx_compiler.measure_fp16_emulation(sub, inputs, data_range)
                quality = artifact_quality(compiler, path, held_out, profile, precision, output_spec["range"]) \
                    if held_out is not None else None
                if quality is None:
                    why = no_quality or "%s artifacts cannot run here (%s)" % (
                        compiler.name, parity.get("why") or "no runtime for them on this machine")
                    if config.name in metrics:
                        quality = checkpoint_quality(metrics[config.name], why)
                    elif search_quality is not None:
                        quality = {"psnr": float(search_quality), "source": "edgegan search",
                                   "measured_on": "the PyTorch supernet during `edgegan search`, not this "
                                                  "artifact: %s" % why}
                if quality is not None:
                    variant["quality"] = quality
                variants.append(variant)
            manifest = {
                "format": FORMAT,
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "edgegan_version": __version__,
                "target": profile["name"],
                "profile": profile,
                "backend": compiler.bundle_backend,
                "source": {"checkpoint": os.path.abspath(checkpoint),
                           "checkpoint_sha256": sha256_file(checkpoint), "arch": ckpt["generator"]["arch"],
                           "data": data.get("name")},
                "input": compiler.io_spec(input_spec),
                "output": compiler.io_spec(output_spec),
                "variants": variants,
                "policy": manifest_policy(profile["policy"], variants),
            }
            if input_specs and len(input_specs) > 1:  # every input in graph order; "input" stays the first
                manifest["inputs"] = [compiler.io_spec(spec) for spec in input_specs]
            manifest["default_variant"] = manifest["policy"]["default"]
            manifest.update(compiler.finish(writer.path, variants, profile, precision))
            terminal.flush()
        if log_lines(log):  # the converters' output, now that stdout / stderr are restored
            manifest["build_log"] = {"file": BUILD_LOG, "lines": log_lines(log),
                                     "what": "what the converters printed (warnings, library logs, progress)"}
        elif os.path.exists(log):
            os.remove(log)
        if wheel is not None:
            manifest["runtime_wheel"] = wheel
        writer.commit(manifest)
    return out, manifest
