"""The edges2shoes demo's pipeline: end-to-end FPS against the model's own FPS, and the time per frame that is
not the model's, with the stages overlapped (default) or serial (``--serial``), on two cores and pinned to one.

Each configuration runs ``edgegan demo edges2shoes --headless --out --stats`` (``--outputs none``: without
``--out``, the frames composed as for a window but not encoded) in a child process (pinned with
``taskset -c 0`` for the one-core rows: a Jetson-class CPU budget) over a real video: OpenCV's ``vtest.avi``
(768×576, Debian's ``opencv-doc``) and the same video resized to 640×480. Configurations alternate in
``--rounds`` rounds; each row is the median over rounds of what ``--stats`` reports:

    FPS             frames ÷ wall time, end to end (decode → edges → model → composition → mp4v encoding)
    model FPS       frames ÷ time in the model (inference only)
    non-model ms    wall ms per frame − model ms per frame: what the pipeline adds per frame
    non-model CPU   CPU ms per frame of reading + edges and composition + output (thread time: a loaded
                    machine inflates it far less than wall time)

Goals (issue: a demo pipeline that keeps up with its model): non-model time per frame ≤ 3 ms at 640×480
with the packaged model; FPS ≥ 0.8 × model FPS whenever the model runs below 100 FPS (``--bundle-slow``:
a 256² model, e.g. width 0.25 of a 256² ResNet-9 built for cpu-openvino-bf16).

    python benchmarks/demo_pipeline.py --bundle edgegan-cpu --bundle-slow shoes256-w025 \\
        --json benchmarks/results/demo_pipeline.json
    python benchmarks/demo_pipeline.py --make-slow runs/shoes64.pt --bundle-slow /tmp/shoes256-w025  # build it

``--make-slow CKPT`` writes that bundle from a trained slimmable checkpoint (any training size: the
generator is fully convolutional; its ``data.size`` is set to 256 and width 0.25 built for cpu-openvino-bf16).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from edgegan.cli._common import format_table  # noqa: E402
from edgegan.runtime.bundle import write_json_atomic  # noqa: E402
from edgegan.runtime.fps import environment  # noqa: E402

VTEST = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", help="the packaged model's bundle (default: built from it for target cpu)")
    p.add_argument("--bundle-slow", help="a bundle whose model runs below 100 FPS here (a 256² model)")
    p.add_argument("--make-slow", metavar="CKPT", help="build --bundle-slow from this checkpoint first")
    p.add_argument("--video", default=VTEST, help="the source video (default: opencv-doc's vtest.avi)")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--no-pin", action="store_true", help="skip the one-core (taskset -c 0) rows")
    p.add_argument("--outputs", default="mp4",
                   help="comma-separated: mp4 (--out: frames composed and encoded) and/or none (--stats only: "
                        "frames composed as for a window, not encoded); default mp4")
    p.add_argument("--json", default=os.path.join(HERE, "results", "demo_pipeline.json"))
    return p.parse_args(argv)


def video_640(src, out):
    """``src`` resized to 640×480 (XVID), the issue's reference input size."""
    import cv2

    capture = cv2.VideoCapture(src)
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    writer = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*"XVID"), fps, (640, 480))
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        writer.write(cv2.resize(frame, (640, 480), interpolation=cv2.INTER_AREA))
    writer.release()
    capture.release()
    return out


def make_slow_bundle(checkpoint, out):
    """Width 0.25 of ``checkpoint`` at 256² for cpu-openvino-bf16 (the checkpoint's size set to 256)."""
    import torch

    from edgegan.targets.build import build_bundle

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    ckpt["data"]["size"] = 256
    ckpt.pop("resume", None)
    ckpt.pop("discriminator", None)
    tmp = os.path.join(tempfile.mkdtemp(prefix="edgegan-256-"), "shoes256.pt")
    torch.save(ckpt, tmp)
    build_bundle("cpu-openvino-bf16", tmp, out, widths=[0.25], force=True, progress=False)
    return out


def run_demo(bundle, video, frames, serial, pin, tmp, output="mp4"):
    stats = os.path.join(tmp, "stats.json")
    command = [sys.executable, "-m", "edgegan", "demo", "edges2shoes", "--bundle", bundle, "--source", video,
               "--headless", "--stats", stats, "--frames", str(frames), "--loop", "--force", "--stats-every", "0"]
    if output == "mp4":
        command += ["--out", os.path.join(tmp, "out.mp4")]
    if serial:
        command.append("--serial")
    if pin:
        command = ["taskset", "-c", "0"] + command + ["--threads", "1"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=dict(os.environ, PYTHONPATH=os.path.dirname(HERE)))
    with open(stats) as f:
        s = json.load(f)
    p = s["pipeline"]
    model_fps = 1e3 / p["stage_ms_mean"]["infer_ms"]
    return {"fps": s["fps"], "model_fps": model_fps, "fps_over_model": s["fps"] / model_fps,
            "non_model_ms": p["non_model_ms_per_frame"], "non_model_cpu_ms": p["non_model_cpu_ms_per_frame"],
            "dropped": p["frames_dropped"], "stage_ms": p["stage_ms_mean"], "stage_cpu_ms": p["stage_cpu_ms_mean"],
            "frames": s["frames"], "load": os.getloadavg()[0]}


def main(argv=None):
    args = parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="edgegan-demo-bench-")
    if args.make_slow:
        make_slow_bundle(args.make_slow, args.bundle_slow)
    bundle = args.bundle
    if not bundle:
        from edgegan.targets.build import build_bundle

        bundle = os.path.join(tmp, "packaged-cpu")
        build_bundle("cpu", out=bundle, progress=False)
    videos = [("640x480", video_640(args.video, os.path.join(tmp, "vtest640.avi"))), ("768x576", args.video)]
    outputs = [o.strip() for o in args.outputs.split(",") if o.strip()]
    if not outputs or any(o not in ("mp4", "none") for o in outputs):
        raise SystemExit("--outputs takes mp4 and/or none, got %r" % args.outputs)
    configs = []
    for cores in ((2,) if args.no_pin else (2, 1)):
        for output in outputs:
            for label, video in videos:
                for serial in (False, True):
                    configs.append(("packaged", bundle, label, video, serial, cores, output))
            if args.bundle_slow:
                for serial in (False, True):
                    configs.append(("256² w0.25", args.bundle_slow, "640x480", videos[0][1], serial, cores, output))
    samples = dict((i, []) for i in range(len(configs)))
    for r in range(args.rounds):
        for i, (model, b, label, video, serial, cores, output) in enumerate(configs):
            samples[i].append(run_demo(b, video, args.frames, serial, cores == 1, tmp, output))
            print("round %d: %s %s %s %d core(s) output %s: %.1f FPS" % (
                r + 1, model, label, "serial" if serial else "overlap", cores, output, samples[i][-1]["fps"]),
                file=sys.stderr)
    rows = []
    for i, (model, b, label, video, serial, cores, output) in enumerate(configs):
        runs = samples[i]
        med = dict((k, float(np.median([s[k] for s in runs]))) for k in
                   ("fps", "model_fps", "fps_over_model", "non_model_ms", "non_model_cpu_ms", "dropped", "load"))
        stage = dict((k, float(np.median([s["stage_ms"][k] for s in runs]))) for k in runs[0]["stage_ms"])
        med.update({"model": model, "input": label, "mode": "serial" if serial else "overlap", "cores": cores,
                    "output": output,
                    "stage_ms": stage, "runs": runs})
        rows.append(med)
    print(format_table(rows, [
        ("model", "model", None), ("input", "input", None), ("cores", "cores", "{:d}"), ("mode", "stages", None),
        ("output", "output", None),
        ("fps", "FPS", "{:.1f}"), ("model_fps", "model FPS", "{:.1f}"), ("fps_over_model", "FPS/model", "{:.2f}"),
        ("non_model_ms", "non-model ms", "{:.2f}"), ("non_model_cpu_ms", "non-model CPU ms", "{:.2f}"),
        ("load", "load", "{:.1f}")]))
    result = {"benchmark": "demo_pipeline", "bundle": bundle, "bundle_slow": args.bundle_slow, "video": args.video,
              "frames": args.frames, "rounds": args.rounds, "rows": rows,
              "environment": environment(backends=("onnxruntime", "openvino"))}
    write_json_atomic(args.json, result, force=True, indent=2)
    shutil.rmtree(tmp, ignore_errors=True)
    print("wrote %s" % args.json)


if __name__ == "__main__":
    main()
