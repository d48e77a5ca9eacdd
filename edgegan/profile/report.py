"""What a sweep writes: the FPS table, the Pareto front, JSON, CSV, plots, and the table stored into
the bundle's manifest. Python 3.6-compatible; matplotlib only for the plots."""

import csv
import json
import os
import shutil
import tempfile
import time

from ..errors import EdgeganError
from ..runtime.bundle import MANIFEST, check_writable, load_bundle, move_into_place

JSON_NAME = "profile.json"
CSV_NAME = "profile.csv"
CSV_COLUMNS = ("mode", "mode_label", "threads", "variant", "width", "macs", "params", "quality", "quality_metric",
               "fps", "mean_ms", "median_ms", "p90_ms", "p99_ms", "cv", "runs", "wall_s", "warmup_runs", "warmup_s",
               "switch_ms", "first_inference_ms", "watts", "idle_w", "active_w", "energy_mj", "active_energy_mj",
               "power_samples", "pareto")


def fps_table(result):
    """``{"modes": {mode: {variant: fps}}, "default_mode", "created", "protocol", "how", "source"}`` from a
    sweep: what ``Policy`` reads to meet a target FPS."""
    modes = {}
    for row in result["rows"]:
        modes.setdefault(row["mode"], {})[row["variant"]] = round(row["fps"], 3)
    mode_info = result.get("modes", [])
    current = [m["key"] for m in mode_info if m.get("how") == "current"]
    return {"modes": modes, "default_mode": current[0] if current else (mode_info[-1]["key"] if mode_info else None),
            "how": dict((m["key"], m.get("how")) for m in mode_info),
            "created": result.get("created"), "protocol": result.get("protocol"), "source": "edgegan profile"}


def _dominates(a, b, keys):
    """Whether ``a`` is at least as good as ``b`` on every (key, sign) and better on one."""
    better = False
    for key, sign in keys:
        if sign * a[key] < sign * b[key]:
            return False
        if sign * a[key] > sign * b[key]:
            better = True
    return better


def pareto_front(rows):
    """Mark each row ``pareto`` = not dominated in (FPS ↑, quality ↑, energy per frame ↓).

    Quality falls back to the width when the bundle has no quality metrics; energy is left out
    when any row lacks it. Returns the Pareto rows."""
    quality_key = "quality" if rows and all(r.get("quality") is not None for r in rows) else "width"
    keys = [("fps", 1), (quality_key, 1)]
    if rows and all(r.get("energy_mj") is not None for r in rows):
        keys.append(("energy_mj", -1))
    points = [dict((k, r.get(k) if r.get(k) is not None else 0.0) for k, _ in keys) for r in rows]
    front = []
    for n, row in enumerate(rows):
        row["pareto"] = not any(_dominates(points[m], points[n], keys) for m in range(len(rows)) if m != n)
        if row["pareto"]:
            front.append(row)
    return front


def write_json(result, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, default=str)
        f.write("\n")


def write_csv(rows, path, columns=CSV_COLUMNS):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])


def write_outputs(result, out_dir, force=False, plots=True):
    """Write ``profile.json``, ``profile.csv`` and the plots into ``out_dir`` (staged in a temporary
    directory next to it, then renamed into place; an existing ``out_dir`` needs ``force``).

    Returns the list of written file names; ``result["files"]`` lists them and ``result["plots_note"]``
    says why plots are missing, if they are."""
    if os.path.lexists(out_dir) and not force:
        raise EdgeganError("%s already exists; pass --force to replace it, or choose another --out" % out_dir)
    check_writable(out_dir, "--out")
    parent, base = os.path.split(os.path.abspath(out_dir))
    try:
        if not os.path.isdir(parent):
            os.makedirs(parent)
        stage = tempfile.mkdtemp(prefix=".%s.tmp-" % base, dir=parent)
    except OSError as e:
        raise EdgeganError("cannot write %s (%s); choose another --out" % (out_dir, e.strerror or e))
    try:
        os.chmod(stage, 0o755)
        files = [JSON_NAME, CSV_NAME]
        result["plots_note"] = None
        if plots:
            try:
                from .plots import plot_all
            except ImportError as e:
                result["plots_note"] = "no plots: %s (pip install matplotlib)" % e
            else:
                files += plot_all(result, stage)
        else:
            result["plots_note"] = "plots not requested"
        result["files"] = files
        write_csv(result["rows"], os.path.join(stage, CSV_NAME))
        write_json(result, os.path.join(stage, JSON_NAME))
        move_into_place(stage, out_dir, force=force)
        stage = None
    finally:
        if stage is not None and os.path.isdir(stage):
            shutil.rmtree(stage, ignore_errors=True)
    return files


def write_fps_table(bundle_path, result_or_table, force=False, target_fps=None):
    """Store a sweep's FPS table as ``manifest["fps_table"]`` of the bundle (and ``policy.target_fps``
    when given), rewriting ``manifest.json`` atomically. The artifacts and their sha256 do not change;
    the bundle is verified before and after. An existing table needs ``force``. Returns the manifest."""
    from ..runtime.policy import Policy

    table = result_or_table.get("fps_table", result_or_table) if isinstance(result_or_table, dict) else None
    if not isinstance(table, dict) or not isinstance(table.get("modes"), dict) or not table["modes"]:
        raise EdgeganError("no FPS table to write: the sweep measured nothing")
    bundle = load_bundle(bundle_path, verify=True)
    manifest = bundle.manifest
    if manifest.get("fps_table") and not force:
        raise EdgeganError("%s already holds an FPS table (written %s); pass --force to replace it"
                           % (bundle.path, manifest["fps_table"].get("created", "earlier")))
    for mode, row in table["modes"].items():
        for name in row:
            bundle.variant(name)  # raises for a variant the bundle lacks
    manifest["fps_table"] = table
    if target_fps is not None:
        if not target_fps > 0:
            raise EdgeganError("--target-fps must be positive, got %r" % target_fps)
        policy = dict(manifest.get("policy") or {})
        policy["target_fps"] = float(target_fps)
        manifest["policy"] = policy
    Policy.from_dict(manifest.get("policy"), bundle, manifest["fps_table"])  # the policy must still load
    path = os.path.join(bundle.path, MANIFEST)
    fd, tmp = tempfile.mkstemp(prefix=".manifest.json.tmp-", dir=bundle.path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        tmp = None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    load_bundle(bundle.path, verify=True)
    return manifest


def describe_environment(result):
    """One line about where the sweep ran (for plot subtitles)."""
    env = (result.get("modes") or [{}])[0].get("environment") or {}
    parts = [env.get("device_model") or env.get("hostname") or "?", "%s CPUs" % env.get("cpu_count", "?"),
             result.get("backend") or "?"]
    return ", ".join(str(p) for p in parts) + ", " + time.strftime("%Y-%m-%d", time.gmtime())
