#!/usr/bin/env python3
"""The edges2shoes webcam demo: ``python demos/edges2shoes_webcam.py --bundle DIR [options]``.

The same as ``edgegan demo edges2shoes``; ``--help`` lists the options, sources and keys. Runs from a
checkout without installing edgegan (on a Jetson: numpy, JetPack's OpenCV and the backend; no torch):

    python3 demos/edges2shoes_webcam.py --bundle shoes-nano --source csi
    python3 demos/edges2shoes_webcam.py --bundle edgegan-cpu --source canvas
    python3 demos/edges2shoes_webcam.py --bundle edgegan-cpu --source clip.mp4 --headless --out result.mp4
"""

import os
import sys

try:
    import edgegan  # noqa: F401 - installed, or on the path already
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from edgegan.cli.demo import main  # noqa: E402 - after the path fix

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog=os.path.basename(sys.argv[0])))
