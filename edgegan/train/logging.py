"""CSV training logs: one row per logged step (``--log-csv PATH``).

Columns: ``step``, ``seconds`` (training time since the run started, across resumes), then the losses in the
order of the first row (e.g. ``d``, ``g``, ``distill``, ``d/w0.25``, ``g/w0.25``, ...). A resumed run
appends to an existing log (no second header). Rows are flushed as they are written, so the file can
be followed while training runs.
"""

import csv
import os


class CSVLogger:
    def __init__(self, path, append=False):
        self.path = path
        self.fields = None
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        if append and os.path.isfile(path) and os.path.getsize(path) > 0:
            with open(path, newline="") as f:
                self.fields = next(csv.reader(f), None)
            self._file = open(path, "a", newline="")
        else:
            self._file = open(path, "w", newline="")
        self._writer = None if self.fields is None else csv.DictWriter(self._file, self.fields, extrasaction="ignore")

    def log(self, step, seconds, losses):
        row = {"step": int(step), "seconds": round(float(seconds), 3)}
        row.update({k: float(v) for k, v in losses.items()})
        if self._writer is None:
            self.fields = list(row)
            self._writer = csv.DictWriter(self._file, self.fields, extrasaction="ignore")
            self._writer.writeheader()
        self._writer.writerow(row)
        self._file.flush()

    def close(self):
        if not self._file.closed:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class NullLogger:
    """Stands in for ``CSVLogger`` when there is no ``--log-csv`` (or on ranks other than 0)."""

    def log(self, step, seconds, losses):
        pass

    def close(self):
        pass


def open_logger(path, append=False):
    return CSVLogger(path, append=append) if path else NullLogger()
