"""The ``edgegan demo edges2shoes`` command: options, output checks, the run, its summary.

``run_edges2shoes(options)`` is what ``edgegan demo edges2shoes`` and ``demos/edges2shoes_webcam.py``
call: it checks the options (outputs writable, nothing overwritten without ``--force``) before
anything is opened, runs ``edgegan.demo.loop.Demo`` over the source with the power link, writes the
composed frames to ``--out`` (temporary file renamed into place) and the stats to ``--stats`` (during
the run and on every exit path), and returns the summary.

Torch-free and Python 3.6-compatible.
"""

import os
import sys

from ..errors import EdgeganError, InputError
from ..runtime.bundle import check_writable
from ..runtime.imageio import VIDEO_EXTENSIONS, FrameWriter
from .keys import parse_key_script, variant_order  # noqa: F401 - re-exported
from .loop import Demo, check_window_support  # noqa: F401 - re-exported
from .pipeline import Layout, Pipeline
from .power_link import PowerLink, _import_power  # noqa: F401 - re-exported
from .sources import cv2_module, open_source
from .stats import DEFAULT_FRAME_RECORDS, STATS_EVERY_S, STATS_FORMAT, StatsFile, StatsRecorder  # noqa: F401


class Options(object):
    """The demo's settings, with the command-line defaults (``argparse`` namespaces work as well)."""

    def __init__(self, **kwargs):
        defaults = dict(bundle=None, source="0", loop=False, variant=None, auto=False, power_source=None,
                        power_interval=2.0, low=None, high=None, blur=None, panel=256, threads=None, backend=None,
                        providers=None, headless=False, out=None, stats=None, frames=None, duration=None,
                        switch_every=None, keys=None, frame_records=DEFAULT_FRAME_RECORDS, screenshot_dir=".",
                        force=False, capture_width=None, capture_height=None, help_overlay=False, serial=False,
                        stats_every=STATS_EVERY_S)
        unknown = set(kwargs) - set(defaults)
        if unknown:
            raise TypeError("unknown demo options: %s" % ", ".join(sorted(unknown)))
        defaults.update(kwargs)
        self.__dict__.update(defaults)


def default_bundle():
    """``./edgegan-cpu`` or ``./edgegan-jetson-nano`` when one exists, else an ``EdgeganError``."""
    for name in ("edgegan-cpu", "edgegan-jetson-nano"):
        if os.path.isfile(os.path.join(name, "manifest.json")):
            return name
    raise EdgeganError("no bundle: pass --bundle DIR (build one with `edgegan build --target cpu`, or copy the "
                       "bundle directory to the device)")


def check_options(o):
    """Refuse bad settings before anything is opened (``InputError`` / ``EdgeganError``)."""
    for name in ("frames", "switch_every", "threads"):
        value = getattr(o, name)
        if value is not None and value < 1:
            raise InputError("--%s must be at least 1, got %d" % (name.replace("_", "-"), value))
    if o.duration is not None and o.duration <= 0:
        raise InputError("--duration must be positive, got %g" % o.duration)
    if o.power_interval <= 0:
        raise InputError("--power-interval must be positive, got %g" % o.power_interval)
    if o.frame_records < 0:
        raise InputError("--frame-records must be 0 or more, got %d" % o.frame_records)
    if o.switch_every and o.auto:
        raise InputError("--switch-every and --auto both pick the variant; choose one")
    if o.out:
        if os.path.splitext(o.out)[1].lower() not in VIDEO_EXTENSIONS:
            raise InputError("--out %s: the demo writes a video; use one of %s (mp4v)"
                             % (o.out, " ".join(VIDEO_EXTENSIONS)))
        if os.path.isdir(o.out):
            raise InputError("--out %s is a folder; pass a video file name such as result.mp4" % o.out)
    if o.stats_every is not None and o.stats_every < 0:
        raise InputError("--stats-every must be 0 (only at the end) or more seconds, got %g" % o.stats_every)
    if o.out and o.stats and os.path.abspath(o.out) == os.path.abspath(o.stats):
        raise InputError("--out and --stats are the same file; choose two paths")
    for path in (o.out, o.stats):
        if path and os.path.abspath(path) == os.path.abspath(str(o.source)):
            raise InputError("%s is the --source; choose another output path" % path)
        if path and os.path.lexists(path) and not o.force:
            raise EdgeganError("%s already exists; pass --force to replace it, or choose another path" % path)
    for flag, path in (("--out", o.out), ("--stats", o.stats)):
        if path:
            check_writable(path, flag)
    parse_key_script(o.keys)
    if o.headless and not (o.out or o.stats):
        sys.stderr.write("note: --headless without --out or --stats writes nothing; only the summary is printed\n")


def run_edges2shoes(options, log=None):
    """Run the demo with ``options`` (an ``Options`` or an argparse namespace); returns the summary dict.

    The output video (``out``) and stats (``stats``) are written even when the source ended early,
    the camera was lost, Ctrl-C stopped the run or an error ended it; the summary's ``end_reason`` and
    ``error`` say which (the CLI then exits 2 for a lost source, 130 for Ctrl-C). The stats file is
    also rewritten every ``stats_every`` seconds during the run.
    """
    from ..runtime import Runtime

    log = log if log is not None else sys.stderr
    o = options
    check_options(o)
    bundle_path = o.bundle or default_bundle()
    cv2 = cv2_module()
    if not o.headless:
        check_window_support(cv2)
    key_script = parse_key_script(o.keys)
    providers = [p.strip() for p in o.providers.split(",") if p.strip()] if o.providers else None
    with Runtime(bundle_path, backend=o.backend, threads=o.threads, variant=o.variant, providers=providers) as rt:
        pipeline = Pipeline(rt, low=o.low, high=o.high, blur=o.blur)
        layout = Layout(o.panel)
        source = open_source(o.source, loop=o.loop, canvas_size=layout.panel, canvas_example=True,
                             width=o.capture_width, height=o.capture_height)
        power = demo = stats_file = None
        run = {"failure": None}

        def summary():
            return summarise(o, rt, source, pipeline, demo, power, run["failure"])

        try:
            requested = bool(o.auto or o.power_source)
            if requested:
                power = PowerLink(rt, o.power_source, o.power_interval, modules=_import_power(), log=log)
            else:
                try:
                    power = PowerLink(rt, None, o.power_interval, modules=_import_power())
                except Exception as e:  # noqa: BLE001 - optional: the overlay then says "power: unknown"
                    if log:
                        log.write("note: no power readings (%s)\n" % e)
            demo = Demo(rt, source, pipeline, layout, headless=o.headless, frames=o.frames, duration=o.duration,
                        key_script=key_script, switch_every=o.switch_every, power=power,
                        recorder=StatsRecorder(o.frame_records), screenshot_dir=o.screenshot_dir,
                        show_help=o.help_overlay, log=log, overlap=not o.serial)
            if o.stats:
                stats_file = StatsFile(o.stats, summary, force=o.force, every_s=o.stats_every)
                demo.stats_file = stats_file
            if power is not None:
                power.on_switch = demo._on_policy_switch
            if o.auto:
                demo.set_auto(True)
            record_video(o, source, demo)
        except BaseException as e:
            run["failure"] = e
            raise
        finally:
            source.close()
            if power is not None:
                power.close()
            if stats_file is not None:  # on every exit path: a run that ends badly keeps its stats
                try:
                    stats_file.write(final=True)
                except EdgeganError:
                    if run["failure"] is None:
                        raise
        return summary()


def record_video(o, source, demo):
    """``demo.run()`` with the ``--out`` video open: closed and renamed into place with the frames so far
    whatever ended the run; a write error (disk full, folder gone) is an ``EdgeganError``."""
    writer = FrameWriter(o.out, "video", force=o.force, fps=source.fps) if o.out else None
    try:
        if writer is not None:
            writer.__enter__()
        try:
            demo.writer = writer
            demo.run()
        except BaseException:
            if writer is not None:
                writer.__exit__(*sys.exc_info())
            raise
        if writer is not None:
            if writer.frames:
                writer.__exit__(None, None, None)  # closes the video and renames it into place
            else:
                writer.__exit__(InputError, None, None)  # nothing to keep: the temporary file goes
                if demo.error is None and demo.end_reason != "interrupted":
                    raise InputError("%s delivered no frame; %s not written" % (source.description, o.out))
    except (IOError, OSError) as e:
        raise EdgeganError("cannot write --out %s (%s); choose a writable path"
                           % (o.out, getattr(e, "strerror", None) or e))


def summarise(o, rt, source, pipeline, demo, power, failure=None):
    """The summary (and ``--stats`` content) of a run so far."""
    from ..runtime.fps import environment

    recorder = demo.recorder if demo is not None else StatsRecorder(0)
    wall_s = demo.wall_s if demo is not None and demo.wall_s else None
    if demo is not None and wall_s is None and demo.recorder.records:  # during the run
        wall_s = demo.recorder.records[-1][1]
    end_reason = demo.end_reason if demo is not None else None
    error = demo.error if demo is not None else None
    if failure is not None and end_reason is None:
        end_reason = "interrupted" if isinstance(failure, KeyboardInterrupt) else "error"
        error = failure
    summary = {
        "format": STATS_FORMAT,
        "demo": "edges2shoes",
        "bundle": rt.bundle.path,
        "target": rt.manifest.get("target"),
        "backend": rt.backend_name,
        "providers": getattr(rt.backend, "providers", None),
        "source": source.info(),
        "headless": bool(o.headless),
        "out": o.out,
        "frames_requested": o.frames,
        "duration_requested_s": o.duration,
        "end_reason": end_reason,
        "error": str(error) if error else None,
        "wall_s": wall_s or 0.0,
        "fps": recorder.frames / wall_s if wall_s else None,
        "edges": {"low": pipeline.low, "high": pipeline.high, "blur": pipeline.blur, "invert": pipeline.invert},
        "model_input": [pipeline.channels, pipeline.height, pipeline.width],
        "variant_final": rt.variant,
        "auto_final": demo.auto if demo is not None else False,
        "power_source": power.source.name if power is not None else None,
        "power_final": power.state.to_dict() if power is not None and power.state is not None else None,
        "screenshots": list(demo.screenshots) if demo is not None else [],
        "pipeline": demo.pipeline_summary() if demo is not None else None,
        "environment": environment(o.threads, backends=[rt.backend_name]),
    }
    summary.update(recorder.summary())
    return summary
