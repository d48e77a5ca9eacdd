"""Overlapped demo stages: a one-slot handoff between threads and the thread that reads and prepares frames.

With ``overlap`` the demo runs three stages side by side::

    reader thread     source.read() (capture / decode) → centre crop → resize → Canny → model input
    model thread      keys and power policy between frames → inference → postprocessing → stats
    main thread       composition, overlay, video encoding, window and keys

joined by ``Handoff`` slots that hold one item each. A realtime source (a camera, a GStreamer
pipeline) never waits: when the model is busy, the waiting frame is replaced by the newer one and
counted as dropped, so the model always gets the newest frame and nothing queues up. A video file
or the canvas waits instead (every frame of a file is processed). Results are never dropped: the
model thread waits for the main thread, so the video written has every processed frame.

OpenCV, NumPy's large operations and the inference libraries release the GIL, so the stages run
on different cores. Torch-free and Python 3.6-compatible.
"""

import threading
import time


class End(object):
    """The last item through a handoff: why the run ended, and the error (``SourceLost``...) if any."""

    def __init__(self, reason, error=None):
        self.reason = reason
        self.error = error


class Handoff(object):
    """One item passed between two threads.

    ``put(item)`` waits while the slot is full, or with ``drop`` replaces the waiting item (counted in
    ``dropped``); ``get()`` waits for an item. ``close()`` wakes both sides: ``put`` then returns
    ``False`` and ``get`` ``None``. An ``End`` is never replaced: ``put`` waits for it to be taken.
    """

    def __init__(self, drop=False):
        self.drop = drop
        self.dropped = 0
        self.closed = False
        self._item = None
        self._full = False
        self._cond = threading.Condition()

    def put(self, item):
        with self._cond:
            if self.drop and self._full and not isinstance(self._item, End) and not isinstance(item, End):
                self.dropped += 1
            else:
                while self._full and not self.closed:
                    self._cond.wait()
            if self.closed:
                return False
            self._item, self._full = item, True
            self._cond.notify_all()
            return True

    def get(self, timeout=None):
        """The next item; ``None`` when closed, or when ``timeout`` seconds passed without one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._full and not self.closed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            self._cond.notify_all()
            return item

    def close(self):
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class StageThread(threading.Thread):
    """A daemon thread running ``body()``. An exception it raises is kept in ``error`` and passed on as
    ``End("error", e)`` through ``outbox``, so the stages after it end instead of waiting forever."""

    def __init__(self, name, body, outbox=None):
        threading.Thread.__init__(self, name=name)
        self.daemon = True
        self._body = body
        self._outbox = outbox
        self.error = None

    def run(self):
        try:
            self._body()
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            self.error = e
            if self._outbox is not None:
                self._outbox.put(End("error", e))


def read_frames(source, pipeline, out, stop, clock=time.perf_counter):
    """The reader stage: frames of ``source`` prepared by ``pipeline`` into ``out`` until the source ends
    (``End("source-ended")``), is lost or fails (``End("source-lost" / "source-failed" / "error", error)``)
    or ``stop`` is set."""
    from .sources import SourceError, SourceLost

    from .stats import thread_time

    while not stop.is_set():
        t0, c0 = clock(), thread_time()
        try:
            frame = source.read()
        except SourceLost as e:
            out.put(End("source-lost", e))
            return
        except SourceError as e:  # a video that cannot be decoded any further
            out.put(End("source-failed", e))
            return
        except Exception as e:  # noqa: BLE001 - anything else ends the run with it, raised in the main thread
            out.put(End("error", e))
            return
        if frame is None:
            out.put(End("source-ended"))
            return
        t1 = clock()
        edges = None
        if hasattr(source, "render_edges"):
            edges = source.render_edges(pipeline.height, pipeline.width)
        prepared = pipeline.prepare(frame, source.drawn, edges)
        prepared.read_ms = (t1 - t0) * 1e3
        prepared.reader_cpu_ms = (thread_time() - c0) * 1e3
        if not out.put(prepared):
            return
