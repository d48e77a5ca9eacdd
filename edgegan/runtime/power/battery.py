"""``psutil.sensors_battery()`` on any OS (Linux, macOS, Windows): battery % and AC, no watts.

psutil is imported lazily: the runtime does not need it. Python 3.6-compatible.
"""

from . import PowerSource, PowerState


def _psutil():
    try:
        import psutil
    except ImportError:
        return None
    return psutil


class PsutilSource(PowerSource):
    name = "psutil"

    def __init__(self):
        self.psutil = _psutil()
        if self.psutil is None:
            from . import PowerError
            raise PowerError("the psutil power source needs psutil: pip install psutil")

    @classmethod
    def probe(cls):
        psutil = _psutil()
        if psutil is None or not hasattr(psutil, "sensors_battery"):
            return False
        try:
            return psutil.sensors_battery() is not None
        except Exception:  # psutil raises platform-specific errors where there is no battery API
            return False

    def read(self):
        battery = self.psutil.sensors_battery()
        if battery is None:
            return PowerState(self.name, notes=["psutil reports no battery"])
        notes = ["psutil gives no power draw"]
        return PowerState(self.name, on_ac=battery.power_plugged, battery_percent=battery.percent, notes=notes)
