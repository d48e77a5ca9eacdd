"""The edges2shoes demo loop: source → pipeline → window or video, keys, auto mode, stats.

``run_edges2shoes(options)`` is what ``edgegan demo edges2shoes`` and ``demos/edges2shoes_webcam.py``
call. ``Demo`` is the loop itself, usable from Python with any source object::

    with Runtime("edgegan-cpu") as rt:
        demo = Demo(rt, VideoSource("clip.mp4"), Pipeline(rt), frames=100)
        demo.run()
        summary = demo.recorder.summary()

Windowed, it shows input | edges | output with the status band and reads keys with
``cv2.waitKey`` (canvas strokes with ``cv2.setMouseCallback``). Headless (``--headless``) it writes
the composed frames to a video (temporary file renamed into place) and the per-frame stats to JSON.
A scripted key sequence (``--keys 10:-,20:a``) or ``--switch-every N`` drives the same key handler
without a keyboard, for tests and soaks. When a video ends or a camera disappears the loop stops,
the output video is closed and renamed into place with the frames so far, and the stats say why.

Torch-free and Python 3.6-compatible.
"""

import collections
import os
import sys
import tempfile
import time

import numpy as np

from ..errors import EdgeganError, InputError
from ..runtime.bundle import move_into_place, write_json_atomic
from ..runtime.imageio import VIDEO_EXTENSIONS, FrameWriter
from .overlay import RollingFPS, draw_help, draw_status
from .pipeline import Layout, Pipeline, compose
from .sources import CanvasSource, SourceLost, cv2_module, open_source

STATS_FORMAT = "edgegan-demo-stats/1"
WINDOW = "edgegan edges2shoes"
DEFAULT_FRAME_RECORDS = 10000
LATENCY_WINDOW = 10000
MESSAGE_S = 3.0
THRESHOLD_STEP = 10

#: Names usable in ``--keys`` for keys that are awkward in a comma-separated list.
KEY_NAMES = {"space": " ", "esc": "\x1b", "plus": "+", "minus": "-", "comma": ",", "colon": ":",
             "up": "+", "down": "-"}


def parse_key_script(text):
    """``"10:-,20:a,30:space"`` → ``{10: ["-"], 20: ["a"], 30: [" "]}``: keys pressed before frame N (0-based)."""
    script = {}
    if not text:
        return script
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        frame, sep, key = item.partition(":")
        key = key.strip()
        if not sep or not frame.strip().isdigit() or not key:
            raise InputError("--keys: expected FRAME:KEY items separated by commas (e.g. 10:-,20:a,30:s), got %r"
                             % item)
        key = KEY_NAMES.get(key.lower(), key)
        if len(key) != 1:
            raise InputError("--keys: %r is not one key; use a character or one of %s"
                             % (key, ", ".join(sorted(KEY_NAMES))))
        script.setdefault(int(frame), []).append(key)
    return script


def variant_order(bundle):
    """Variant names from narrowest to widest (by width, then MACs, then manifest order)."""
    indexed = list(enumerate(bundle.variants))
    indexed.sort(key=lambda item: (item[1].get("width") if item[1].get("width") is not None else float("inf"),
                                   item[1].get("macs") if item[1].get("macs") is not None else float("inf"),
                                   item[0]))
    return [v["name"] for _, v in indexed]


class Ring(object):
    """The last ``size`` floats, in a numpy array allocated (and touched) up front: a fixed footprint."""

    def __init__(self, size):
        self._data = np.full(max(1, int(size)), np.nan)
        self._next = 0
        self.count = 0

    def append(self, value):
        self._data[self._next] = value
        self._next = (self._next + 1) % self._data.size
        self.count += 1

    def values(self):
        return self._data[:min(self.count, self._data.size)]


def _percentiles(values):
    a = np.asarray(values, dtype=np.float64)
    if not a.size:
        return None
    return {"mean": float(a.mean()), "median": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "min": float(a.min()), "max": float(a.max())}


class StatsRecorder(object):
    """Per-frame records and per-variant aggregates, in bounded memory.

    Per variant: exact frame count and time sums (FPS end to end = frames ÷ their frame time, model
    FPS = frames ÷ their inference time) and the latencies of its last ``latency_window`` frames
    for percentiles (``Ring``: numpy, allocated up front). Per frame: up to ``max_frame_records``
    records (the first ones), so a long run keeps a fixed footprint; ``per_frame_truncated`` says
    when records were dropped.
    """

    FRAME_FIELDS = ("frame", "t_s", "variant", "edges_ms", "infer_ms", "frame_ms", "fps", "auto", "mode", "watts")

    def __init__(self, max_frame_records=DEFAULT_FRAME_RECORDS, latency_window=LATENCY_WINDOW, max_switches=10000):
        self.max_frame_records = max(0, int(max_frame_records))
        self.latency_window = latency_window
        self.max_switches = max_switches
        self.frames = 0
        self.records = []
        self.dropped_records = 0
        self.switches = []
        self.dropped_switches = 0
        self._variants = collections.OrderedDict()

    def _variant(self, name):
        entry = self._variants.get(name)
        if entry is None:
            entry = {"frames": 0, "frame_s": 0.0, "infer_s": 0.0, "edges_s": 0.0,
                     "frame_ms": Ring(self.latency_window), "infer_ms": Ring(self.latency_window)}
            self._variants[name] = entry
        return entry

    def record(self, frame, t_s, variant, edges_ms, infer_ms, frame_ms, fps=None, auto=False, mode=None, watts=None):
        self.frames += 1
        entry = self._variant(variant)
        entry["frames"] += 1
        entry["frame_s"] += frame_ms / 1e3
        entry["infer_s"] += infer_ms / 1e3
        entry["edges_s"] += edges_ms / 1e3
        entry["frame_ms"].append(frame_ms)
        entry["infer_ms"].append(infer_ms)
        if len(self.records) < self.max_frame_records:
            self.records.append((frame, round(t_s, 6), variant, round(edges_ms, 4), round(infer_ms, 4),
                                 round(frame_ms, 4), None if fps is None else round(fps, 3), bool(auto), mode,
                                 None if watts is None else round(watts, 4)))
        else:
            self.dropped_records += 1

    def switch(self, frame, old, new, reason, why=None):
        if len(self.switches) < self.max_switches:
            entry = {"frame": frame, "from": old, "to": new, "reason": reason}
            if why:
                entry["why"] = why
            self.switches.append(entry)
        else:
            self.dropped_switches += 1

    def variants(self):
        """Per-variant summary: frames, fps, model_fps, frame_ms / infer_ms percentiles, edges_ms mean."""
        out = collections.OrderedDict()
        for name, e in self._variants.items():
            out[name] = {
                "frames": e["frames"],
                "seconds": e["frame_s"],
                "fps": e["frames"] / e["frame_s"] if e["frame_s"] > 0 else None,
                "model_fps": e["frames"] / e["infer_s"] if e["infer_s"] > 0 else None,
                "frame_ms": _percentiles(e["frame_ms"].values()),
                "infer_ms": _percentiles(e["infer_ms"].values()),
                "edges_ms_mean": e["edges_s"] * 1e3 / e["frames"],
                "latency_window": min(e["frames"], self.latency_window),
            }
        return out

    def summary(self):
        return {
            "frames": self.frames,
            "variants": self.variants(),
            "switches": list(self.switches),
            "switches_dropped": self.dropped_switches,
            "per_frame_fields": list(self.FRAME_FIELDS),
            "per_frame": [dict(zip(self.FRAME_FIELDS, r)) for r in self.records],
            "per_frame_truncated": self.dropped_records > 0,
            "per_frame_dropped": self.dropped_records,
        }


# -- power ---------------------------------------------------------------------------------------

def _import_power():
    """``(edgegan.runtime.power, edgegan.runtime.policy)``; ``None`` for the part this edgegan lacks."""
    try:
        from ..runtime import power
    except ImportError:
        power = None
    try:
        from ..runtime import policy
    except ImportError:
        policy = None
    return power, policy


class PowerLink(object):
    """The power source behind the overlay's mode/watts and, in auto mode, the policy that picks the variant.

    ``spec``: a ``detect_source`` spec (``None`` = auto-detect). The source is read every
    ``interval_s`` seconds from the demo loop (``tick``), never in a thread, so a variant switch
    happens between frames. Auto mode runs ``PolicyMonitor.poll()`` (``Policy.from_bundle``: the
    manifest's mode → variant map, battery caps, target FPS) and reports each switch through
    ``on_switch(entry)`` (the monitor's log entry: from, to, why, switch_ms).
    """

    def __init__(self, runtime, spec=None, interval_s=2.0, on_switch=None, clock=time.perf_counter):
        power, self._policy_module = _import_power()
        if power is None:
            raise EdgeganError("power sources need edgegan.runtime.power (the power-aware runtime), which this "
                               "edgegan does not have; run without --auto/--power-source")
        self.runtime = runtime
        self.spec = spec
        self.interval_s = float(interval_s)
        self.on_switch = on_switch
        self.source = power.detect_source(spec)
        self.state = None
        self.monitor = None
        self._clock = clock
        self._last = None

    def enable_auto(self):
        """Create the ``PolicyMonitor`` (once); ``EdgeganError`` if there is no policy module or bundle policy."""
        if self.monitor is not None:
            return self.monitor
        if self._policy_module is None:
            raise EdgeganError("auto mode needs edgegan.runtime.policy (the power-aware runtime), which this "
                               "edgegan does not have; pick variants with +/- or --variant")
        policy = self._policy_module.Policy.from_bundle(self.runtime.bundle)
        self.monitor = self._policy_module.PolicyMonitor(self.runtime, self.source, policy,
                                                         interval_s=self.interval_s, on_switch=self._switched)
        return self.monitor

    def _switched(self, entry):
        if self.on_switch is not None:
            self.on_switch(entry)

    def tick(self, auto, force=False):
        """Read the source when ``interval_s`` passed (or ``force``); in auto mode let the policy decide.

        Returns the current ``PowerState`` (possibly the previous reading).
        """
        now = self._clock()
        if not force and self._last is not None and now - self._last < self.interval_s:
            return self.state
        self._last = now
        if auto:
            monitor = self.enable_auto()
            monitor.poll()  # reads the source, decides, switches; a failed read keeps the variant
            state = monitor.last_state if monitor.last_state is not None else self.state
        else:
            state = self.source.read()
        self.state = state
        return state

    def close(self):
        if self.monitor is not None:
            try:
                self.monitor.stop()
            except Exception:  # noqa: BLE001 - never started; stopping must not mask the outcome
                pass
        self.source.close()


# -- the loop ------------------------------------------------------------------------------------

def check_window_support(cv2):
    """``EdgeganError`` when this process cannot open a window (no display, or a GUI-less OpenCV)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise EdgeganError("no display (DISPLAY is not set): run on the device's screen (export DISPLAY=:0), "
                           "over `ssh -X`, or headless: --headless --out result.mp4 --frames 300")
    for line in cv2.getBuildInformation().splitlines():
        parts = line.split(":", 1)
        if parts[0].strip() == "GUI" and len(parts) == 2 and parts[1].strip().upper() == "NONE":
            raise EdgeganError("this OpenCV (%s) has no GUI (opencv-python-headless?): pip install opencv-python "
                               "(the [demo] extra) in an environment without the headless wheel, or run with "
                               "--headless --out result.mp4" % cv2.__version__)


class Demo(object):
    """The demo loop over one source.

    ``headless``: no window (the frames go to ``writer`` only). ``writer``: an entered
    ``FrameWriter`` or ``None``. ``frames`` / ``duration``: stop after that many frames / seconds.
    ``key_script``: ``{frame: [keys]}`` pressed before those frames; ``switch_every``: cycle the
    variants every N frames. ``power``: a ``PowerLink`` or ``None``; ``auto`` starts in auto mode.
    After ``run()``: ``end_reason`` (``frames``, ``duration``, ``source-ended``, ``source-lost``,
    ``quit``, ``interrupted``), ``error`` (the ``SourceLost``), ``recorder`` (the stats).
    """

    def __init__(self, runtime, source, pipeline, layout=None, headless=True, writer=None, frames=None,
                 duration=None, key_script=None, switch_every=None, power=None, auto=False, recorder=None,
                 screenshot_dir=".", show_help=False, window=WINDOW, log=None, clock=time.perf_counter):
        self.runtime = runtime
        self.source = source
        self.pipeline = pipeline
        self.layout = layout or Layout()
        self.headless = headless
        self.writer = writer
        self.frames = frames
        self.duration = duration
        self.key_script = key_script or {}
        self.switch_every = switch_every
        self.power = power
        self.auto = False
        self.recorder = recorder or StatsRecorder()
        self.screenshot_dir = screenshot_dir
        self.show_help = show_help
        self.window = window
        self.log = log if log is not None else sys.stderr
        self._clock = clock
        self.order = variant_order(runtime.bundle)
        self.fps_meter = RollingFPS(clock=clock)
        self.frame_index = 0
        self.paused = False
        self.end_reason = None
        self.error = None
        self.screenshots = []
        self.wall_s = 0.0
        self._message = None
        self._message_until = 0.0
        self._buffer = None
        self._result = None
        self._last_frame_ms = None
        self._window_open = False
        self._visible_supported = None
        if auto:
            self.set_auto(True)

    # -- actions ---------------------------------------------------------------------------------

    def say(self, message):
        """Show ``message`` in the status band for a few seconds (and log it when headless)."""
        self._message = message
        self._message_until = self._clock() + MESSAGE_S
        if self.headless and self.log:
            self.log.write("frame %d: %s\n" % (self.frame_index, message))

    def switch(self, name, reason):
        """Make variant ``name`` current (recorded with ``reason``); the rolling FPS restarts."""
        old = self.runtime.variant
        new = self.runtime.set_variant(name)
        if new != old:
            self.recorder.switch(self.frame_index, old, new, reason)
            self.fps_meter.reset()
        return new

    def step_variant(self, delta, reason="key"):
        """One variant wider (``+1``) or narrower (``-1``); a manual step turns auto off."""
        overridden = self.auto and reason == "key"
        if overridden:
            self.auto = False
        index = self.order.index(self.runtime.variant)
        target = min(max(index + delta, 0), len(self.order) - 1)
        if target == index:
            self.say("already the %s variant (%s)" % ("widest" if delta > 0 else "narrowest", self.runtime.variant))
            return self.runtime.variant
        name = self.switch(self.order[target], reason)
        self.say("variant %s%s" % (name, " (manual override: auto off)" if overridden else ""))
        return name

    def set_auto(self, on):
        """Turn auto (the power-mode policy) on or off."""
        if on:
            if self.power is None:
                raise EdgeganError("auto mode needs a power source (edgegan.runtime.power), which is not available")
            self.power.enable_auto()
            self.auto = True
            self.power.tick(True, force=True)
            self.say("auto: the power-mode policy picks the variant (%s)" % self.runtime.variant)
        else:
            self.auto = False
            self.say("auto off")

    def _on_policy_switch(self, entry):
        """``PolicyMonitor``'s ``on_switch``: record the switch it made (``entry``: from, to, why, ...)."""
        self.recorder.switch(self.frame_index, entry.get("from"), entry.get("to"), "auto", entry.get("why"))
        self.fps_meter.reset()
        self.say("auto: %s -> %s (%s)" % (entry.get("from"), entry.get("to"), entry.get("why")))

    def handle_key(self, key):
        """Apply one key (a one-character string, or a ``cv2.waitKey`` code); returns ``True`` to quit."""
        if isinstance(key, int):
            if key < 0:
                return False
            key = chr(key & 0xFF)
        if key in ("q", "Q", "\x1b"):
            return True
        if key in ("+", "="):
            self.step_variant(+1)
        elif key in ("-", "_"):
            self.step_variant(-1)
        elif key in ("a", "A"):
            try:
                self.set_auto(not self.auto)
            except EdgeganError as e:
                self.say(str(e))
                if self.headless:
                    raise
        elif key in ("[", "]", "{", "}"):
            low, high = self.pipeline.low, self.pipeline.high
            if key == "[":
                low -= THRESHOLD_STEP
            elif key == "]":
                low += THRESHOLD_STEP
            elif key == "{":
                high -= THRESHOLD_STEP
            else:
                high += THRESHOLD_STEP
            low, high = self.pipeline.set_thresholds(low, high)
            self.say("Canny thresholds %d/%d" % (low, high))
        elif key in ("c", "C") and isinstance(self.source, CanvasSource):
            self.source.clear()
            self.say("canvas cleared")
        elif key in ("z", "Z", "u") and isinstance(self.source, CanvasSource):
            self.source.undo()
            left = len(self.source.strokes)
            self.say("undo: %d stroke%s left" % (left, "" if left == 1 else "s"))
        elif key == " ":
            if not self.headless:
                self.paused = not self.paused
                self.say("paused" if self.paused else "running")
        elif key in ("s", "S"):
            self.save_screenshot()
        elif key in ("h", "H", "?"):
            self.show_help = not self.show_help
        return False

    def save_screenshot(self, path=None):
        """Write the frame on screen as a PNG (temporary file renamed into place); returns its path."""
        if self._buffer is None:
            self.say("no frame yet to save")
            return None
        cv2 = cv2_module()
        if path is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = os.path.join(self.screenshot_dir, "edges2shoes-%s-%06d.png" % (stamp, self.frame_index))
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            os.makedirs(parent)
        fd, tmp = tempfile.mkstemp(prefix=".screenshot-", suffix=".png", dir=parent)
        os.close(fd)
        try:
            if not cv2.imwrite(tmp, self._buffer):
                raise EdgeganError("cannot write the screenshot %s" % path)
            os.chmod(tmp, 0o644)
            move_into_place(tmp, path, force=True)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        self.screenshots.append(path)
        self.say("saved %s" % path)
        return path

    # -- window ----------------------------------------------------------------------------------

    def open_window(self):
        cv2 = cv2_module()
        check_window_support(cv2)
        try:
            # GUI_NORMAL: no Qt toolbar (ignored by GTK builds such as JetPack's)
            cv2.namedWindow(self.window, cv2.WINDOW_AUTOSIZE | getattr(cv2, "WINDOW_GUI_NORMAL", 0))
        except cv2.error as e:
            raise EdgeganError("cannot open a window (%s): install opencv-python (the [demo] extra) or run "
                               "--headless" % str(e).strip().splitlines()[-1])
        self._window_open = True
        if isinstance(self.source, CanvasSource):
            cv2.setMouseCallback(self.window, self._on_mouse)

    def close_window(self):
        if self._window_open:
            cv2 = cv2_module()
            try:
                cv2.destroyWindow(self.window)
                cv2.waitKey(1)
            except cv2.error:
                pass
            self._window_open = False

    def _on_mouse(self, event, x, y, flags, param):
        cv2 = cv2_module()
        canvas = self.source
        scale = float(canvas.size) / self.layout.panel
        point = self.layout.to_panel(0, x, y)
        if event == cv2.EVENT_LBUTTONDOWN and point is not None:
            canvas.begin(point[0] * scale, point[1] * scale)
        elif event == cv2.EVENT_MOUSEMOVE and canvas.drawing:
            x0, y0 = self.layout.panel_origin(0)
            canvas.extend((x - x0) * scale, (y - y0) * scale)
        elif event == cv2.EVENT_LBUTTONUP:
            canvas.end()

    def _window_closed(self, cv2):
        """Whether the user closed the window. Builds that cannot tell (``WND_PROP_VISIBLE`` is -1 while
        the window is open, as in some GTK builds) are never taken for closed: quit with q / Esc there."""
        try:
            visible = cv2.getWindowProperty(self.window, cv2.WND_PROP_VISIBLE)
        except cv2.error:
            return self._visible_supported is True
        if self._visible_supported is None:
            self._visible_supported = visible >= 1
            return False
        return bool(self._visible_supported) and visible < 1

    # -- the loop --------------------------------------------------------------------------------

    def captions(self, result):
        info = self.runtime.variant_info
        if self.source.drawn:
            first, second = "canvas: draw with the mouse", "edges: the drawing"
        else:
            first = "input: %s" % self.source.description
            if len(first) > 34:
                first = first[:31] + "..."
            second = "edges: Canny %d/%d" % (self.pipeline.low, self.pipeline.high)
        return (first, "%s (%dx%d)" % (second, self.pipeline.width, self.pipeline.height),
                "output: %s" % (result.variant if result is not None else info["name"]))

    def render(self):
        """Compose the current result with the status band (into the reused buffer); returns it."""
        result = self._result
        info = self.runtime.variant_info
        self._buffer = compose(result, self.layout, self.captions(result), out=self._buffer)
        state = self.power.state if self.power is not None else None
        status = {"fps": self.fps_meter.fps, "frame_ms": self._last_frame_ms, "infer_ms": result.infer_ms,
                  "variant": result.variant, "width": info.get("width"), "macs": info.get("macs"),
                  "auto": self.auto, "power": state, "low": self.pipeline.low, "high": self.pipeline.high,
                  "drawn": self.source.drawn, "paused": self.paused}
        message = self._message if self._message and self._clock() < self._message_until else None
        draw_status(self._buffer, self.layout, status, message)
        if self.show_help:
            draw_help(self._buffer, self.layout)
        return self._buffer

    def _step(self, start):
        """One iteration; returns an end reason or ``None`` to go on."""
        cv2 = None if self.headless else cv2_module()
        if self.frames is not None and self.frame_index >= self.frames:
            return "frames"
        if self.duration is not None and self._clock() - start >= self.duration:
            return "duration"
        t0 = self._clock()
        if self.paused and self._result is not None:
            self.render()
            cv2.imshow(self.window, self._buffer)
            key = cv2.waitKey(30)
            if self._window_closed(cv2):
                return "quit"
            return "quit" if self.handle_key(key) else None
        if self.power is not None:
            self.power.tick(self.auto)
        frame = self.source.read()
        if frame is None:
            return "source-ended"
        for key in self.key_script.get(self.frame_index, ()):
            if self.handle_key(key):
                return "quit"
        if self.switch_every and self.frame_index and self.frame_index % self.switch_every == 0:
            index = self.order.index(self.runtime.variant)
            self.switch(self.order[(index + 1) % len(self.order)], "script")
        edges = None
        if hasattr(self.source, "render_edges"):
            edges = self.source.render_edges(self.pipeline.height, self.pipeline.width)
        result = self.pipeline.process(frame, self.source.drawn, edges)
        self._result = result
        self.render()
        if self.writer is not None:
            self.writer.write("%06d.png" % self.frame_index, self._buffer)
        quit_now = False
        if not self.headless:
            cv2.imshow(self.window, self._buffer)
            key = cv2.waitKey(1)
            quit_now = self.handle_key(key) or self._window_closed(cv2)
        t1 = self._clock()
        self._last_frame_ms = (t1 - t0) * 1e3
        fps = self.fps_meter.tick(t1)
        state = self.power.state if self.power is not None else None
        self.recorder.record(self.frame_index, t1 - start, result.variant, result.edges_ms, result.infer_ms,
                             self._last_frame_ms, fps, self.auto, getattr(state, "mode", None),
                             getattr(state, "watts", None))
        self.frame_index += 1
        return "quit" if quit_now else None

    def run(self):
        """Loop until the end; returns ``end_reason``. ``SourceLost`` and Ctrl-C end the loop cleanly
        (``error`` / ``end_reason`` say so) so the caller can close the output properly."""
        start = self._clock()
        if not self.headless:
            self.open_window()
        try:
            end = None
            while end is None:
                end = self._step(start)
        except SourceLost as e:
            end = "source-lost"
            self.error = e
        except KeyboardInterrupt:
            end = "interrupted"
        finally:
            self.wall_s = self._clock() - start
            self.close_window()
        self.end_reason = end
        return end


# -- the command ---------------------------------------------------------------------------------

class Options(object):
    """The demo's settings, with the command-line defaults (``argparse`` namespaces work as well)."""

    def __init__(self, **kwargs):
        defaults = dict(bundle=None, source="0", loop=False, variant=None, auto=False, power_source=None,
                        power_interval=2.0, low=None, high=None, blur=None, panel=256, threads=None, backend=None,
                        providers=None, headless=False, out=None, stats=None, frames=None, duration=None,
                        switch_every=None, keys=None, frame_records=DEFAULT_FRAME_RECORDS, screenshot_dir=".",
                        force=False, capture_width=None, capture_height=None, help_overlay=False)
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
    if o.out and o.stats and os.path.abspath(o.out) == os.path.abspath(o.stats):
        raise InputError("--out and --stats are the same file; choose two paths")
    for path in (o.out, o.stats):
        if path and os.path.abspath(path) == os.path.abspath(str(o.source)):
            raise InputError("%s is the --source; choose another output path" % path)
        if path and os.path.lexists(path) and not o.force:
            raise EdgeganError("%s already exists; pass --force to replace it, or choose another path" % path)
    parse_key_script(o.keys)
    if o.headless and not (o.out or o.stats):
        sys.stderr.write("note: --headless without --out or --stats writes nothing; only the summary is printed\n")


def run_edges2shoes(options, log=None):
    """Run the demo with ``options`` (an ``Options`` or an argparse namespace); returns the summary dict.

    The output video (``out``) and stats (``stats``) are written even when the source ended early,
    the camera was lost or Ctrl-C stopped the run; the summary's ``end_reason`` and ``error`` say
    which (the CLI then exits 2 for a lost source, 130 for Ctrl-C).
    """
    from ..runtime import Runtime
    from ..runtime.fps import environment

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
        power = None
        try:
            if o.auto or o.power_source:
                power = PowerLink(rt, o.power_source, o.power_interval)
            else:
                try:
                    power = PowerLink(rt, None, o.power_interval)
                except Exception as e:  # noqa: BLE001 - optional: the overlay then says "power: unknown"
                    if log:
                        log.write("note: no power readings (%s)\n" % e)
            recorder = StatsRecorder(o.frame_records)
            demo = Demo(rt, source, pipeline, layout, headless=o.headless, frames=o.frames, duration=o.duration,
                        key_script=key_script, switch_every=o.switch_every, power=power, recorder=recorder,
                        screenshot_dir=o.screenshot_dir, show_help=o.help_overlay, log=log)
            if power is not None:
                power.on_switch = demo._on_policy_switch
            if o.auto:
                demo.set_auto(True)
            writer = FrameWriter(o.out, "video", force=o.force, fps=source.fps) if o.out else None
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
        finally:
            source.close()
            if power is not None:
                power.close()
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
            "end_reason": demo.end_reason,
            "error": str(demo.error) if demo.error else None,
            "wall_s": demo.wall_s,
            "fps": recorder.frames / demo.wall_s if demo.wall_s > 0 else None,
            "edges": {"low": pipeline.low, "high": pipeline.high, "blur": pipeline.blur, "invert": pipeline.invert},
            "model_input": [pipeline.channels, pipeline.height, pipeline.width],
            "variant_final": rt.variant,
            "auto_final": demo.auto,
            "power_source": power.source.name if power is not None else None,
            "power_final": power.state.to_dict() if power is not None and power.state is not None else None,
            "screenshots": demo.screenshots,
            "environment": environment(o.threads, backends=[rt.backend_name]),
        }
        summary.update(recorder.summary())
        if o.stats:
            write_json_atomic(o.stats, summary, force=o.force)
    return summary
