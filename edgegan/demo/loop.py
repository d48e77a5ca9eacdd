"""The edges2shoes demo loop: source → pipeline → window or video, keys, auto mode, stats.

``Demo`` is the loop itself, usable from Python with any source object::

    with Runtime("edgegan-cpu") as rt:
        demo = Demo(rt, VideoSource("clip.mp4"), Pipeline(rt), frames=100, overlap=True)
        demo.run()
        summary = demo.recorder.summary()

Windowed, it shows input | edges | output with the status band and reads keys with
``cv2.waitKey`` (canvas strokes with ``cv2.setMouseCallback``). Headless, the composed frames go to
``writer`` only. A scripted key sequence (``--keys 10:-,20:a``) or ``switch_every`` drives the same key
handler without a keyboard, for tests and soaks: a model key of the script (variant, auto, thresholds)
applies before the model runs frame N, a display key (screenshot, help) before frame N is shown.
When a video ends or a camera disappears the loop stops and ``end_reason`` says why.

With ``overlap=True`` reading + edges, the model and composition + output run in three threads
(``edgegan.demo.stages``); without, one thread does each frame's steps in turn.

Torch-free and Python 3.6-compatible.
"""

import collections
import sys
import threading
import time

from ..errors import EdgeganError
from .keys import DISPLAY_KEYS, MODEL_KEYS, QUIT_KEYS, THRESHOLD_STEP, key_char, variant_order
from .overlay import RollingFPS, draw_help, draw_status
from .pipeline import Layout, compose
from .sources import CanvasSource, SourceError, SourceLost, cv2_module
from .stages import End, Handoff, StageThread, read_frames
from .stats import StatsRecorder, thread_time
from .window import WindowMixin, check_window_support  # noqa: F401 - re-exported

WINDOW = "edgegan edges2shoes"
MESSAGE_S = 3.0


class Demo(WindowMixin):
    """The demo loop over one source.

    ``headless``: no window (the frames go to ``writer`` only). ``writer``: an entered
    ``FrameWriter`` or ``None``. ``frames`` / ``duration``: stop after that many frames / seconds.
    ``key_script``: ``{frame: [keys]}`` pressed before those frames; ``switch_every``: cycle the
    variants every N frames. ``power``: a ``PowerLink`` or ``None``; ``auto`` starts in auto mode.
    After ``run()``: ``end_reason`` (``frames``, ``duration``, ``source-ended``, ``source-lost``,
    ``source-failed``, ``quit``, ``interrupted``), ``error`` (the ``SourceLost`` / ``SourceError``),
    ``recorder`` (the stats).

    ``overlap``: run reading + edges, the model, and composition + output in three threads
    (``edgegan.demo.stages``): end-to-end FPS approaches the model's own. Otherwise one thread does
    each frame's steps in turn. ``stats_file``: a ``StatsFile`` rewritten during the run.
    """

    def __init__(self, runtime, source, pipeline, layout=None, headless=True, writer=None, frames=None,
                 duration=None, key_script=None, switch_every=None, power=None, auto=False, recorder=None,
                 screenshot_dir=".", show_help=False, window=WINDOW, log=None, clock=time.perf_counter,
                 overlap=False, stats_file=None):
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
        self.overlap = overlap
        self.stats_file = stats_file
        self.dropped = 0
        self.stage_s = {"read": 0.0, "edges": 0.0, "infer": 0.0, "output": 0.0}
        self.stage_cpu_s = {"reader": 0.0, "output": 0.0}  # CPU time of the non-model stages (thread time)
        self._pending = collections.deque()  # window keys for the model thread
        self._stop = threading.Event()
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
        new = self.pipeline.set_variant(name)
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
        key = key_char(key)
        if key is None:
            return False
        if key in QUIT_KEYS:
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

    def _control(self):
        """Between two frames, in the thread that runs the model: power reading / policy, window keys,
        the key script and ``switch_every``. Returns ``(quit, display_keys)``: the display keys of the
        script, for the stage that shows this frame."""
        if self.power is not None:
            self.power.tick(self.auto)
        while self._pending:
            if self.handle_key(self._pending.popleft()):
                return True, ()
        display = []
        for key in self.key_script.get(self.frame_index, ()):
            if self.overlap and key in DISPLAY_KEYS:
                display.append(key)
            elif self.handle_key(key):
                return True, ()
        if self.switch_every and self.frame_index and self.frame_index % self.switch_every == 0:
            index = self.order.index(self.runtime.variant)
            self.switch(self.order[(index + 1) % len(self.order)], "script")
        return False, display

    def _limit_reached(self, start):
        if self.frames is not None and self.frame_index >= self.frames:
            return "frames"
        if self.duration is not None and self._clock() - start >= self.duration:
            return "duration"
        return None

    def _record(self, result, frame_ms, start, now):
        state = self.power.state if self.power is not None else None
        self.recorder.record(self.frame_index, now - start, result.variant, result.edges_ms, result.infer_ms,
                             frame_ms, self.fps_meter.fps, self.auto, getattr(state, "mode", None),
                             getattr(state, "watts", None))
        self.stage_s["read"] += result.read_ms / 1e3
        self.stage_s["edges"] += result.edges_ms / 1e3
        self.stage_cpu_s["reader"] += result.reader_cpu_ms / 1e3
        self.stage_s["infer"] += result.infer_ms / 1e3
        self.frame_index += 1

    def _output(self, result):
        """Compose, overlay and write ``result``; show it and read a key in a window. Returns the key
        (``None`` headless)."""
        t0, c0 = self._clock(), thread_time()
        self._result = result
        self.render()
        if self.writer is not None:
            self.writer.write("%06d.png" % self.frame_index, self._buffer)
        key = None
        if not self.headless:
            cv2 = cv2_module()
            cv2.imshow(self.window, self._buffer)
            key = cv2.waitKey(1)
        self.stage_s["output"] += self._clock() - t0
        self.stage_cpu_s["output"] += thread_time() - c0
        return key

    def _step(self, start):
        """One iteration of the serial loop; returns an end reason or ``None`` to go on."""
        cv2 = None if self.headless else cv2_module()
        end = self._limit_reached(start)
        if end:
            return end
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
        c0 = thread_time()
        try:
            frame = self.source.read()
        except SourceLost:
            raise
        except SourceError as e:  # a video that cannot be decoded any further
            self.error = e
            return "source-failed"
        if frame is None:
            return "source-ended"
        t_read = self._clock()
        for key in self.key_script.get(self.frame_index, ()):
            if self.handle_key(key):
                return "quit"
        if self.switch_every and self.frame_index and self.frame_index % self.switch_every == 0:
            index = self.order.index(self.runtime.variant)
            self.switch(self.order[(index + 1) % len(self.order)], "script")
        edges = None
        if hasattr(self.source, "render_edges"):
            edges = self.source.render_edges(self.pipeline.height, self.pipeline.width)
        prepared = self.pipeline.prepare(frame, self.source.drawn, edges)
        c1 = thread_time()
        result = self.pipeline.infer(prepared)
        result.read_ms = (t_read - t0) * 1e3
        result.reader_cpu_ms = (c1 - c0) * 1e3
        key = self._output(result)
        quit_now = False
        if not self.headless:
            quit_now = self.handle_key(key) or self._window_closed(cv2)
        t1 = self._clock()
        self._last_frame_ms = (t1 - t0) * 1e3
        self.fps_meter.tick(t1)
        self._record(result, self._last_frame_ms, start, t1)
        if self.stats_file is not None:
            self.stats_file.maybe_write()
        return "quit" if quit_now else None

    def _model_stage(self, inbox, outbox, start):
        """The model thread of the overlapped loop: prepared frames from ``inbox`` → results to ``outbox``."""
        last = self._clock()
        while True:
            end = self._limit_reached(start)
            if end:
                outbox.put(End(end))
                return
            prepared = inbox.get()
            if prepared is None:  # closed: the main thread stopped the run
                return
            if isinstance(prepared, End):
                outbox.put(prepared)
                return
            quit_now, display = self._control()
            if quit_now:
                outbox.put(End("quit"))
                return
            result = self.pipeline.infer(prepared)
            result.keys = display
            if not outbox.put(result):
                return
            now = self._clock()
            self._last_frame_ms = (now - last) * 1e3  # one cycle of the model thread: the pipeline's pace
            last = now
            self.fps_meter.tick(now)
            self._record(result, self._last_frame_ms, start, now)

    def _run_overlapped(self, start):
        """Reader, model and output stages in three threads (see ``edgegan.demo.stages``); the calling
        (main) thread composes, writes, shows and reads keys. Returns the end reason."""
        frames = Handoff(drop=bool(getattr(self.source, "realtime", False)))
        results = Handoff()
        self._stop.clear()
        reader = StageThread("edgegan-reader", lambda: read_frames(self.source, self.pipeline, frames, self._stop,
                                                                   self._clock), outbox=frames)
        model = StageThread("edgegan-model", lambda: self._model_stage(frames, results, start), outbox=results)
        reader.start()
        model.start()
        cv2 = None if self.headless else cv2_module()
        end = None
        try:
            while end is None:
                if self.paused and self._result is not None:
                    self.render()
                    cv2.imshow(self.window, self._buffer)
                    key = cv2.waitKey(30)
                    if self._window_closed(cv2) or self._window_key(key):
                        end = "quit"
                    continue
                item = results.get(timeout=None if self.headless else 0.03)
                if item is None:
                    if not self.headless:
                        if self._window_key(cv2.waitKey(1)) or self._window_closed(cv2):
                            end = "quit"
                    continue
                if isinstance(item, End):
                    end, self.error = item.reason, item.error
                    break
                for key in item.keys:
                    self.handle_key(key)
                key = self._output(item)
                if not self.headless and (self._window_key(key) or self._window_closed(cv2)):
                    end = "quit"
                if self.stats_file is not None:
                    self.stats_file.maybe_write()
        finally:
            self._stop.set()
            frames.close()
            results.close()
            reader.join()
            model.join()
            self.dropped = frames.dropped
        if end == "error":  # an exception in a stage thread: raised here, in the main thread
            raise self.error
        return end

    def _window_key(self, key):
        """A key read by the window: display keys now, model keys queued for the model thread; ``True`` to quit."""
        key = key_char(key)
        if key is None:
            return False
        if key in QUIT_KEYS:
            return True
        if key in MODEL_KEYS:
            self._pending.append(key)
            return False
        return self.handle_key(key)

    def run(self):
        """Loop until the end; returns ``end_reason``. ``SourceLost`` and Ctrl-C end the loop cleanly
        (``error`` / ``end_reason`` say so) so the caller can close the output properly."""
        start = self._clock()
        if not self.headless:
            self.open_window()
        try:
            if self.overlap:
                end = self._run_overlapped(start)
            else:
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

    def pipeline_summary(self):
        """How the stages did: overlap, dropped frames, mean wall ms per frame of each stage, the time per
        frame that the model does not account for (wall time per frame minus model time per frame), and
        the CPU time per frame of the non-model stages (reading + edges, composition + output: thread
        time, which a loaded machine does not inflate as it does wall time)."""
        n = self.recorder.frames
        mean = dict((k + "_ms", (v * 1e3 / n if n else None)) for k, v in self.stage_s.items())
        wall_ms = self.wall_s * 1e3 / n if n else None
        infer_ms = mean["infer_ms"]
        cpu = dict((k + "_ms", (v * 1e3 / n if n else None)) for k, v in self.stage_cpu_s.items())
        return {"overlap": bool(self.overlap), "frames_dropped": self.dropped, "stage_ms_mean": mean,
                "non_model_cpu_ms_per_frame": (cpu["reader_ms"] + cpu["output_ms"]) if n else None,
                "stage_cpu_ms_mean": cpu, "wall_ms_per_frame": wall_ms,
                "non_model_ms_per_frame": (wall_ms - infer_ms) if n else None,
                "fps_over_model_fps": (infer_ms / wall_ms) if n and wall_ms else None}
