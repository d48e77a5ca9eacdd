"""``edgegan profile``: sweep a bundle's variants × power modes; FPS, power, energy per frame, plots.

Torch-free and Python 3.6-compatible like the runtime, so it runs on the device (a Jetson on
JetPack 4.6 included); matplotlib is needed only for the PNG plots (``pip install matplotlib``, or
the ``profile`` extra from a checkout).

    from edgegan.profile import plan_modes, sweep, write_outputs, write_fps_table
    result = sweep("edgegan-cpu", plan_modes(emulate_threads=[1, 2]), warmup=100, runs=100)
    write_outputs(result, "profile-cpu")              # profile.json, profile.csv, *.png
    write_fps_table("edgegan-cpu", result)            # the FPS table the target-FPS policy reads
"""

from .report import fps_table, pareto_front, write_csv, write_fps_table, write_json, write_outputs
from .sweep import Mode, PowerSampler, plan_modes, set_nvpmodel, sweep

__all__ = ["Mode", "PowerSampler", "plan_modes", "set_nvpmodel", "sweep", "fps_table", "pareto_front",
           "write_csv", "write_json", "write_outputs", "write_fps_table"]
