"""Soak test of the edges2shoes demo: a looping video, headless, for minutes; resident memory must stay flat.

Runs ``edgegan demo edges2shoes --headless --loop`` in a child process over a generated video of
moving shapes (written with OpenCV), with the output video and the stats file being written as in a
real headless run and the variants cycling (``--switch-every``), and samples the child's resident
set size (RSS, psutil) every ``--interval`` seconds. Reports RSS at the start (first sample after
``--warmup-s``), at the end, the maximum, and the least-squares slope after the warm-up, in MiB per
minute and over the whole run; prints a table and writes JSON to ``benchmarks/results/``.

    python benchmarks/demo_soak.py --bundle edgegan-cpu                    # 10 minutes
    python benchmarks/demo_soak.py --bundle edgegan-cpu --duration 60 --interval 2
    nohup python benchmarks/demo_soak.py --bundle edgegan-cpu > soak.log 2>&1 &   # longer than a shell allows

Torch is not needed (the child is the torch-free demo); psutil is.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from edgegan.cli._common import format_table  # noqa: E402
from edgegan.runtime.bundle import write_json_atomic  # noqa: E402
from edgegan.runtime.fps import environment  # noqa: E402

MIB = 1024.0 * 1024.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", default="edgegan-cpu", help="bundle directory (default ./edgegan-cpu)")
    p.add_argument("--duration", type=float, default=600.0, help="seconds of demo (default 600 = 10 minutes)")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between RSS samples (default 5)")
    p.add_argument("--warmup-s", type=float, default=30.0,
                   help="samples before this many seconds are not used for start RSS and slope (default 30)")
    p.add_argument("--video", help="source video (default: 240 generated frames of moving shapes, 320x240)")
    p.add_argument("--switch-every", type=int, default=500, help="cycle the variants every N frames (default 500)")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads of the backend (default 1)")
    p.add_argument("--no-video", action="store_true", help="do not write the output video (--out)")
    p.add_argument("--frame-records", type=int, default=1000, help="per-frame records in the stats (default 1000)")
    p.add_argument("--keep", metavar="DIR", help="keep the output video and stats in DIR (default: deleted)")
    p.add_argument("--json", default=os.path.join(HERE, "results", "demo_soak.json"), help="where to write the result")
    return p.parse_args(argv)


def write_video(path, frames=240, width=320, height=240, fps=30.0):
    import cv2

    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise SystemExit("cannot write %s: this OpenCV has no mp4v encoder" % path)
    for i in range(frames):
        frame = np.full((height, width, 3), 50, np.uint8)
        cv2.circle(frame, (40 + (i * 3) % (width - 80), height // 2), 30, (255, 255, 255), -1)
        cv2.rectangle(frame, (width - 60 - (i * 2) % (width - 120), 30), (width - (i * 2) % (width - 120), 80),
                      (0, 190, 255), -1)
        cv2.ellipse(frame, (width // 2, height - 50), (60, 20), i % 180, 0, 360, (200, 80, 40), 4)
        writer.write(frame)
    writer.release()
    return path


def slope_mib_per_min(samples):
    """Least-squares slope of RSS (MiB) over time (minutes); ``None`` for fewer than 3 samples."""
    if len(samples) < 3:
        return None
    t = np.array([s["t_s"] for s in samples]) / 60.0
    rss = np.array([s["rss_mib"] for s in samples])
    return float(np.polyfit(t, rss, 1)[0])


def main(argv=None):
    args = parse_args(argv)
    if not os.path.isfile(os.path.join(args.bundle, "manifest.json")):
        raise SystemExit("no bundle at %s: build one with `edgegan build --target cpu`, or pass --bundle" % args.bundle)
    work = tempfile.mkdtemp(prefix="edgegan-soak-")
    try:
        video = args.video or write_video(os.path.join(work, "soak-source.mp4"))
        stats_path = os.path.join(work, "stats.json")
        out_path = os.path.join(work, "soak-out.mp4")
        command = [sys.executable, "-m", "edgegan", "demo", "edges2shoes", "--bundle", args.bundle,
                   "--source", video, "--loop", "--headless", "--duration", str(args.duration),
                   "--stats", stats_path, "--switch-every", str(args.switch_every),
                   "--frame-records", str(args.frame_records), "--threads", str(args.threads)]
        if not args.no_video:
            command += ["--out", out_path]
        print("running: %s" % " ".join(command), flush=True)
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                                 env=dict(os.environ, PYTHONPATH=os.path.dirname(HERE)))
        proc = psutil.Process(child.pid)
        samples = []
        start = time.monotonic()
        while child.poll() is None:
            try:
                info = proc.memory_info()
                cpu = proc.cpu_times()
            except psutil.Error:
                break
            t = time.monotonic() - start
            samples.append({"t_s": round(t, 2), "rss_mib": info.rss / MIB, "vms_mib": info.vms / MIB,
                            "cpu_s": cpu.user + cpu.system})
            if len(samples) % max(1, int(60 / args.interval)) == 0:
                print("  %6.0f s  RSS %.1f MiB" % (t, info.rss / MIB), flush=True)
            time.sleep(args.interval)
        output = child.communicate()[0]
        if child.returncode != 0:
            print(output)
            raise SystemExit("the demo exited with %d" % child.returncode)
        with open(stats_path) as f:
            stats = json.load(f)
        out_bytes = os.path.getsize(out_path) if os.path.exists(out_path) else None
        if args.keep:
            if not os.path.isdir(args.keep):
                os.makedirs(args.keep)
            for path in (stats_path, out_path):
                if os.path.exists(path):
                    shutil.copy(path, args.keep)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    steady = [s for s in samples if s["t_s"] >= args.warmup_s] or samples
    rss = [s["rss_mib"] for s in samples]
    first_min = [s["rss_mib"] for s in steady if s["t_s"] < steady[0]["t_s"] + 60]
    last_min = [s["rss_mib"] for s in steady if s["t_s"] > steady[-1]["t_s"] - 60]
    result = {
        "command": " ".join(["python", "benchmarks/demo_soak.py"] + (argv if argv is not None else sys.argv[1:])),
        "demo_command": command,
        "duration_s": args.duration,
        "interval_s": args.interval,
        "warmup_s": args.warmup_s,
        "samples": len(samples),
        "rss_first_mib": rss[0],
        "rss_start_mib": steady[0]["rss_mib"],
        "rss_end_mib": rss[-1],
        "rss_max_mib": max(rss),
        "rss_min_after_warmup_mib": min(s["rss_mib"] for s in steady),
        "rss_max_after_warmup_mib": max(s["rss_mib"] for s in steady),
        "rss_first_minute_median_mib": float(np.median(first_min)),
        "rss_last_minute_median_mib": float(np.median(last_min)),
        "slope_mib_per_min": slope_mib_per_min(steady),
        "slope_whole_run_mib_per_min": slope_mib_per_min(samples),
        "frames": stats["frames"],
        "fps": stats["fps"],
        "source_loops": stats["source"]["loops"],
        "switches": len(stats["switches"]) + stats.get("switches_dropped", 0),
        "variants": dict((name, {"frames": v["frames"], "fps": v["fps"], "model_fps": v["model_fps"],
                                 "infer_median_ms": (v["infer_ms"] or {}).get("median")})
                         for name, v in stats["variants"].items()),
        "out_video_bytes": out_bytes,
        "end_reason": stats["end_reason"],
        "environment": environment(args.threads, backends=[stats["backend"]]),
        "rss_samples": samples,
    }
    rows = [{"what": k.replace("_mib", "").replace("_", " "), "MiB": result[k]}
            for k in ("rss_first_mib", "rss_start_mib", "rss_end_mib", "rss_max_mib", "rss_min_after_warmup_mib",
                      "rss_first_minute_median_mib", "rss_last_minute_median_mib")]
    print(format_table(rows, [("what", "RSS", None), ("MiB", "MiB", "{:.1f}")]))
    print("slope after %.0f s warm-up: %+.3f MiB/min (whole run %+.3f MiB/min), %d samples every %.0f s"
          % (args.warmup_s, result["slope_mib_per_min"] or 0.0, result["slope_whole_run_mib_per_min"] or 0.0,
             len(samples), args.interval))
    print("%d frames in %.0f s (%.1f FPS), %d source loops, %d variant switches, output video %s"
          % (result["frames"], args.duration, result["fps"], result["source_loops"], result["switches"],
             "%.1f MB" % (out_bytes / 1e6) if out_bytes else "not written"))
    print(format_table([dict(v, variant=k) for k, v in result["variants"].items()],
                       [("variant", "variant", None), ("frames", "frames", "{:d}"), ("fps", "FPS", "{:.1f}"),
                        ("model_fps", "model FPS", "{:.1f}"), ("infer_median_ms", "model ms (median)", "{:.3f}")]))
    if args.json:
        write_json_atomic(args.json, result, force=True)
        print("wrote %s" % args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
