"""The demo's window and screenshots: display checks, the OpenCV window, the mouse on the canvas, closing.

``WindowMixin`` is a part of ``edgegan.demo.loop.Demo`` (it uses the demo's ``window``, ``layout``,
``source``, ``say`` and the composed ``_buffer``). Torch-free and Python 3.6-compatible.
"""

import os
import sys
import tempfile
import time

from ..errors import EdgeganError
from ..runtime.bundle import move_into_place
from .sources import CanvasSource, cv2_module


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


class WindowMixin(object):
    """The window side of ``Demo``: open / close, mouse strokes on the canvas, closed-window detection,
    screenshots of the frame on screen."""

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
