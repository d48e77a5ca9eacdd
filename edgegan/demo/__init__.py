"""Live demos on top of the runtime: the edges2shoes webcam demo.

``edgegan demo edges2shoes --bundle DIR`` (or ``python demos/edges2shoes_webcam.py``) reads frames
from a camera, a video, a GStreamer pipeline (the Jetson CSI camera) or a drawing canvas, computes
their Canny edges the way training did, runs the generator at the current variant and shows input,
edges and output side by side with an overlay (FPS, latency, variant, MACs, power mode, watts).

Modules:
    sources   frame sources: camera index, video file (optionally looping), GStreamer pipeline, canvas
    pipeline  centre crop → resize → edges → generator, and the side-by-side composition
    overlay   rolling FPS meter and the text drawn over the composed frame
    app       the loop: keys, auto (power-mode policy), headless writer and per-frame stats

Runs on the device: torch-free (numpy, OpenCV and the bundle's backend) and Python 3.6-compatible.
OpenCV is imported lazily, with an install hint when it is missing.
"""
