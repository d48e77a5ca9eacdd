"""The demo's overlay: a rolling FPS meter and the status text drawn on the composed frame.

The status band shows the rolling FPS, the frame and model latency, the current variant with its
width and MACs, auto/manual, the power mode and watts when a power source knows them, and the
Canny thresholds. ``h`` shows the key help over the panels; a short message ("auto off: manual
override") appears for a few seconds after an action.

Torch-free and Python 3.6-compatible.
"""

import collections
import time

from .pipeline import CAPTION_H
from .sources import cv2_module

TEXT = (235, 235, 235)
DIM = (150, 150, 150)
ACCENT = (80, 200, 255)
WARN = (60, 160, 255)
FONT_SCALE = 0.45

#: (keys, what they do), as the help overlay and ``--help`` list them.
KEY_HELP = (
    ("+ / -", "wider / narrower variant (turns auto off)"),
    ("a", "auto: the power-mode policy picks the variant"),
    ("[ / ]", "Canny low threshold -/+ 10"),
    ("{ / }", "Canny high threshold -/+ 10"),
    ("c / z", "canvas: clear / undo last stroke"),
    ("space", "pause"),
    ("s", "save a screenshot (PNG)"),
    ("h", "show / hide this help"),
    ("q / Esc", "quit"),
)


class RollingFPS(object):
    """Frames per second over the last ``frames`` frames, at most ``seconds`` back."""

    def __init__(self, frames=30, seconds=2.0, clock=time.perf_counter):
        self._times = collections.deque(maxlen=max(2, int(frames)))
        self.seconds = seconds
        self._clock = clock

    def tick(self, now=None):
        """Record a displayed frame; returns the current FPS (``None`` until two frames were seen)."""
        self._times.append(self._clock() if now is None else now)
        return self.fps

    def reset(self):
        self._times.clear()

    @property
    def fps(self):
        times = self._times
        if len(times) < 2:
            return None
        last = times[-1]
        first_index = 0
        while last - times[first_index] > self.seconds and first_index < len(times) - 2:
            first_index += 1
        span = last - times[first_index]
        if span <= 0:
            return None
        return (len(times) - 1 - first_index) / span


def format_macs(macs):
    """``34.6 MMACs``, ``12.70 GMACs``; ``?`` when unknown."""
    if macs is None:
        return "? MACs"
    macs = float(macs)
    if macs >= 1e9:
        return "%.2f GMACs" % (macs / 1e9)
    if macs >= 1e6:
        return "%.1f MMACs" % (macs / 1e6)
    return "%.0f kMACs" % (macs / 1e3)


def format_power(state):
    """``mode MAXN (0), 7.4 W, AC`` from a ``PowerState`` (or a dict of its fields); ``power: unknown``."""
    if state is None:
        return "power: unknown"
    if hasattr(state, "to_dict"):
        state = state.to_dict()
    parts = []
    mode, name = state.get("mode"), state.get("mode_name")
    if name and mode is not None and str(mode) != str(name):
        parts.append("mode %s (%s)" % (name, mode))
    elif name or mode is not None:
        parts.append("mode %s" % (name if name else mode))
    watts = state.get("watts")
    if watts is not None:
        parts.append("%.1f W" % watts)
    if state.get("on_ac") is True:
        parts.append("AC")
    elif state.get("on_ac") is False:
        battery = state.get("battery_percent")
        parts.append("battery %.0f%%" % battery if battery is not None else "battery")
    if state.get("platform_profile"):
        parts.append(str(state["platform_profile"]))
    return "power: " + (", ".join(parts) if parts else "unknown")


def status_lines(info):
    """The status band's text lines (each a list of (text, colour) pieces) from a dict with ``fps``,
    ``frame_ms``, ``infer_ms``, ``variant``, ``width``, ``macs``, ``auto``, ``power`` (a state or ``None``),
    ``low``, ``high``, ``drawn``, ``paused``."""
    fps = info.get("fps")
    line1 = [("%s FPS" % ("%.1f" % fps if fps is not None else "--"), ACCENT),
             ("   frame %s ms   model %s ms" % (_ms(info.get("frame_ms")), _ms(info.get("infer_ms"))), TEXT)]
    if info.get("paused"):
        line1.append(("   PAUSED", WARN))
    width = info.get("width")
    variant = "variant %s" % info.get("variant")
    if width is not None:
        variant += " (width %g, %s)" % (width, format_macs(info.get("macs")))
    else:
        variant += " (%s)" % format_macs(info.get("macs"))
    line2 = [(variant, TEXT), ("   auto" if info.get("auto") else "   manual", ACCENT if info.get("auto") else DIM),
             ("   " + format_power(info.get("power")), TEXT)]
    if info.get("drawn"):
        edges = "edges: the drawing (c clear, z undo)"
    else:
        edges = "Canny %d/%d" % (info.get("low", 0), info.get("high", 0))
    line3 = [(edges, DIM), ("   h help   q quit", DIM)]
    return [line1, line2, line3]


def _ms(value):
    return "--" if value is None else ("%.1f" % value if value >= 10 else "%.2f" % value)


def draw_status(frame, layout, info, message=None):
    """Draw the status band into ``frame`` (in place); ``message`` replaces the last line."""
    cv2 = cv2_module()
    lines = status_lines(info)
    if message:
        lines[-1] = [(message, WARN)]
    y = layout.status_top + 17
    for pieces in lines:
        x = 8
        for text, colour in pieces:
            cv2.putText(frame, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, FONT_SCALE, colour, 1, cv2.LINE_AA)
            (w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, FONT_SCALE, 1)
            x += w
        y += 18
    return frame


def draw_help(frame, layout):
    """Darken the panels and list the keys over them (in place)."""
    cv2 = cv2_module()
    top, bottom = CAPTION_H, layout.status_top
    region = frame[top:bottom]
    region[:] = (region.astype("uint16") * 3 // 10).astype("uint8")
    y = top + 28
    cv2.putText(frame, "keys", (16, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, ACCENT, 1, cv2.LINE_AA)
    for keys, what in KEY_HELP:
        y += 22
        cv2.putText(frame, keys, (16, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, ACCENT, 1, cv2.LINE_AA)
        cv2.putText(frame, what, (110, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, TEXT, 1, cv2.LINE_AA)
    return frame
