"""The demo's keys: names usable in ``--keys`` scripts, who handles which key, the variant order.

A key either steers the model (variant, auto mode, Canny thresholds, canvas edits: applied between two
inferences by the stage that runs the model) or the display (screenshot, help, pause, quit: applied by
the stage that shows the frames). With overlapped stages the two run in different threads; the
``MODEL_KEYS`` / ``DISPLAY_KEYS`` split says which thread a key goes to.

Torch-free and Python 3.6-compatible.
"""

from ..errors import InputError

THRESHOLD_STEP = 10

#: Names usable in ``--keys`` for keys that are awkward in a comma-separated list.
KEY_NAMES = {"space": " ", "esc": "\x1b", "plus": "+", "minus": "-", "comma": ",", "colon": ":",
             "up": "+", "down": "-"}
QUIT_KEYS = ("q", "Q", "\x1b")
#: keys applied by the stage that runs the model (between two inferences)
MODEL_KEYS = frozenset("+=-_aA[]{}cCzZu")
#: keys applied by the stage that shows the frames
DISPLAY_KEYS = frozenset(" sShH?")


def key_char(key):
    """A one-character string from a key: a string, or a ``cv2.waitKey`` code (``None`` for no key)."""
    if isinstance(key, int):
        if key < 0:
            return None
        return chr(key & 0xFF)
    return key


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
