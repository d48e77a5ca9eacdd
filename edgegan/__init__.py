"""edgegan: width-switchable image generators from training to the device.

The package root stays import-light (no torch) so that ``edgegan.runtime`` loads on a
device that has only numpy and an inference backend.
"""

__version__ = "0.1.0"
