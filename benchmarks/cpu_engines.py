"""CPU engines side by side on one trained 256² pix2pix ResNet-9 (ngf 64): latency at widths 1.0 and 0.25,
PSNR vs PyTorch fp32 on real edge maps, and the fraction of the CPU's measured GEMM peak each engine reaches.

Engines (every one timed in the same run, alternating engine by engine in ``--rounds`` rounds, so that
a shared machine's load hits them alike; latency = median of all timed runs):

    PyTorch eager fp32                      the network as trained (BatchNorm folded, as in every artifact)
    ONNX Runtime fp32 / INT8 Q/DQ           edgegan's cpu and cpu-int8 bundles' backend
    OpenVINO direct fp32 / bf16 / defaults  openvino.Core().compile_model on the same ONNX file
    OpenVINO direct INT8 (Q/DQ, NNCF)       the cpu-int8 Q/DQ file; NNCF post-training quantization
    edgegan openvino fp32 / bf16 / int8     edgegan's cpu-openvino[-bf16|-int8] runtime backend
    ORT + OpenVINO EP (--ort-openvino)      onnxruntime-openvino, from its own venv (it replaces onnxruntime)

    python benchmarks/cpu_engines.py --checkpoint runs/shoes64.pt      # table + results/cpu_engines.json

Goals (issue: speed where the hardware has it): the best edgegan artifact at width 1.0 within 5 % of the
best engine run directly on the same ONNX file and ≥ 4× eager at ≥ 35 dB; latency(0.25)/latency(1.0) ≤ 0.10
for the best engine. The GEMM peak is measured here too: one large MatMul in OpenVINO (fp32, bf16, INT8 Q/DQ)
and in PyTorch (fp32, bf16); the engine's fraction = model MACs / latency / peak of its precision.
``--profile`` adds OpenVINO's per-layer times (perf counters) of the best engine at both widths.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from edgegan.calibrate import CalibrationSet
from edgegan.checkpoint import load_generator
from edgegan.cli._common import format_table
from edgegan.runtime.backends import get_backend
from edgegan.runtime.bundle import write_json_atomic
from edgegan.runtime.fps import environment
from edgegan.subnet import cost, extract
from edgegan.targets.onnx import INPUT_NAME, compile_onnx, psnr, quantize_with_gate
from edgegan.targets.profiles import load_profile

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a trained slimmable ResNet checkpoint (any training size)")
    p.add_argument("--size", type=int, default=256, help="input side the engines run at (default 256)")
    p.add_argument("--widths", default="1.0,0.25")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    p.add_argument("--runs", type=int, default=3, help="timed runs per engine per round (default 3)")
    p.add_argument("--calibration", type=int, default=32, help="INT8 calibration edge maps (training split)")
    p.add_argument("--held-out", type=int, default=8, help="held-out edge maps for PSNR (test split)")
    p.add_argument("--min-psnr", type=float, default=35.0, help="INT8 quality gate, dB vs fp32")
    p.add_argument("--observer", default="entropy", choices=("minmax", "percentile", "entropy"),
                   help="INT8 calibration observer of the Q/DQ model (default entropy, as cpu-int8)")
    p.add_argument("--ort-openvino", metavar="PYTHON", help="a Python with onnxruntime-openvino installed")
    p.add_argument("--gemm", type=int, default=2048, help="side of the square GEMM for the peak (default 2048)")
    p.add_argument("--profile", action="store_true", help="OpenVINO per-layer times of the bf16 engine")
    p.add_argument("--no-int8", action="store_true", help="leave out the INT8 engines (and their calibration)")
    p.add_argument("--engines", metavar="REGEX",
                   help="only the engines whose 'name precision' matches (PyTorch eager is always kept)")
    p.add_argument("--json", default=os.path.join(HERE, "results", "cpu_engines.json"))
    return p.parse_args(argv)


# -- inputs --------------------------------------------------------------------------------------

def edge_maps(split, n, size):
    """Real inputs: Fashion-MNIST shoes resized to ``size``², their Canny edges (the training convention)."""
    from edgegan.data import FashionMnistShoes

    ds = FashionMnistShoes(split, size=size, limit=n)
    return [ds[i][0].numpy()[None].astype(np.float32) for i in range(len(ds))]


# -- engines -------------------------------------------------------------------------------------

class Engine(object):
    """``name``, ``precision``, ``run(x)`` → output array; ``close()``."""

    def __init__(self, name, precision, run, close=None, note=""):
        self.name, self.precision, self._run, self._close, self.note = name, precision, run, close, note

    def run(self, x):
        return self._run(x)

    def close(self):
        if self._close:
            self._close()


def ov_direct(path, threads, precision_hint=None, defaults=False):
    """OpenVINO on the ONNX file, as a user would call it (no edgegan code)."""
    import openvino as ov

    core = ov.Core()
    config = {} if defaults else {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads,
                                  "INFERENCE_PRECISION_HINT": precision_hint}
    compiled = core.compile_model(path, "CPU", config)
    request = compiled.create_infer_request()
    return lambda x: request.infer({0: x}, share_inputs=True, share_outputs=False)[0]


def ort_direct(path, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {INPUT_NAME: x})[0]


def nncf_int8(fp32_path, out_path, calibration, bf16):
    """NNCF post-training quantization of the fp32 ONNX file (OpenVINO's own INT8 path); returns the IR path."""
    import nncf
    import openvino as ov

    model = ov.Core().read_model(fp32_path)
    quantized = nncf.quantize(model, nncf.Dataset(calibration), subset_size=len(calibration))
    ov.save_model(quantized, out_path)
    return out_path


class EpWorker(object):
    """``ort_openvino_worker.py`` in another Python: timings on request."""

    def __init__(self, python, path, precision, threads):
        script = os.path.join(HERE, "ort_openvino_worker.py")
        self.proc = subprocess.Popen([python, script, path, precision, str(threads)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, universal_newlines=True)
        self.ready = json.loads(self.proc.stdout.readline())

    def ask(self, request):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(30)


# -- GEMM peak -----------------------------------------------------------------------------------

def gemm_onnx(path, n, int8):
    """An ONNX graph of one n×n×n MatMul (weights constant); with ``int8`` Q/DQ on both operands."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((n, n)).astype(np.float32), "W")
    nodes, inits = [], [w]
    a, b = "A", "W"
    if int8:
        inits += [numpy_helper.from_array(np.array(0.05, np.float32), "sa"),
                  numpy_helper.from_array(np.array(128, np.uint8), "za"),
                  numpy_helper.from_array(np.array(0.02, np.float32), "sw"),
                  numpy_helper.from_array(np.array(0, np.int8), "zw")]
        nodes += [helper.make_node("QuantizeLinear", ["A", "sa", "za"], ["Aq"]),
                  helper.make_node("DequantizeLinear", ["Aq", "sa", "za"], ["Ad"]),
                  helper.make_node("QuantizeLinear", ["W", "sw", "zw"], ["Wq"]),
                  helper.make_node("DequantizeLinear", ["Wq", "sw", "zw"], ["Wd"])]
        a, b = "Ad", "Wd"
    nodes.append(helper.make_node("MatMul", [a, b], ["Y"]))
    graph = helper.make_graph(nodes, "gemm", [helper.make_tensor_value_info("A", TensorProto.FLOAT, [n, n])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [n, n])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def best_ms(fn, runs=5):
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


def gemm_peaks(n, threads, tmp):
    """Measured GEMM peak in GMAC/s: the best of OpenVINO and PyTorch per precision (min over runs: a peak)."""
    a = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    macs = float(n) ** 3
    found = {}
    f32 = gemm_onnx(os.path.join(tmp, "gemm.onnx"), n, False)
    i8 = gemm_onnx(os.path.join(tmp, "gemm-int8.onnx"), n, True)
    for precision, path, hint in (("fp32", f32, "f32"), ("bf16", f32, "bf16"), ("int8", i8, "f32")):
        run = ov_direct(path, threads, hint)
        found["openvino " + precision] = macs / best_ms(lambda: run(a)) / 1e6
    ta = torch.from_numpy(a)
    tb = torch.from_numpy(np.ascontiguousarray(a.T))
    with torch.inference_mode():
        found["torch fp32"] = macs / best_ms(lambda: ta @ tb) / 1e6
        ha, hb = ta.bfloat16(), tb.bfloat16()
        found["torch bf16"] = macs / best_ms(lambda: ha @ hb) / 1e6
    peaks = {p: max(v for k, v in found.items() if k.endswith(p)) for p in ("fp32", "bf16", "int8")}
    return peaks, found


# -- the benchmark -------------------------------------------------------------------------------

def build_engines(args, sub, width, tmp, calib, ep_python):
    """Every engine for the sub-network ``sub`` of ``width``."""
    threads = args.threads
    shape = (1, 1, args.size, args.size)
    fp32 = os.path.join(tmp, "w%g.onnx" % width)
    compile_onnx(sub, shape, fp32, 17)
    profile = load_profile("cpu-int8")
    profile["calibrate"]["min_psnr_db"] = args.min_psnr
    profile["calibrate"]["observer"] = args.observer
    workdir = tempfile.mkdtemp(dir=tmp)
    report = {"path": None, "kept_float": []} if args.no_int8 else quantize_with_gate(sub, fp32, workdir, calib, profile)
    qdq = report["path"]
    engines = []

    def torch_run(x):
        with torch.inference_mode():
            return sub(torch.from_numpy(x)).numpy()

    engines.append(Engine("PyTorch eager", "fp32", torch_run))
    ort_backend = get_backend("onnxruntime")
    b = ort_backend(fp32, threads=threads)
    engines.append(Engine("ONNX Runtime (edgegan cpu)", "fp32", b.run, b.close))
    if qdq:
        b8 = ort_backend(qdq, threads=threads)
        engines.append(Engine("ONNX Runtime (edgegan cpu-int8)", "int8 Q/DQ", b8.run, b8.close,
                              "%d layers kept float" % len(report["kept_float"])))
    engines.append(Engine("ONNX Runtime direct", "fp32", ort_direct(fp32, threads)))
    engines.append(Engine("OpenVINO direct, defaults", "(auto)", ov_direct(fp32, threads, defaults=True),
                          note="compile_model(path) with no settings"))
    engines.append(Engine("OpenVINO direct", "fp32", ov_direct(fp32, threads, "f32")))
    engines.append(Engine("OpenVINO direct", "bf16", ov_direct(fp32, threads, "bf16")))
    if qdq:
        engines.append(Engine("OpenVINO direct", "int8 Q/DQ", ov_direct(qdq, threads, "f32")))
        engines.append(Engine("OpenVINO direct", "int8 Q/DQ + bf16", ov_direct(qdq, threads, "bf16")))
    try:
        if not qdq:
            raise ImportError("--no-int8")
        ir = nncf_int8(fp32, os.path.join(tmp, "nncf-w%g.xml" % width), calib.inputs, False)
        engines.append(Engine("OpenVINO direct", "int8 NNCF", ov_direct(ir, threads, "f32")))
        engines.append(Engine("OpenVINO direct", "int8 NNCF + bf16", ov_direct(ir, threads, "bf16")))
    except ImportError as e:
        print("NNCF not run: %s" % e, file=sys.stderr)
    ov_backend = get_backend("openvino")
    for precision, path in (("fp32", fp32), ("bf16", fp32), ("int8", qdq)):
        if path is None:
            continue
        b = ov_backend(path, threads=threads, precision=precision)
        engines.append(Engine("edgegan openvino", precision + (" Q/DQ" if precision == "int8" else ""), b.run,
                              b.close, "edgegan runtime backend (%s)" % b.inference_precision))
    if ep_python:
        for precision in ("FP32", "BF16"):
            try:
                worker = EpWorker(ep_python, fp32, precision, threads)
            except Exception as e:  # noqa: BLE001 - an optional engine: say why it is missing
                print("ORT OpenVINO EP %s not run: %s" % (precision, e), file=sys.stderr)
                continue
            if "OpenVINOExecutionProvider" not in worker.ready.get("ready", []):
                print("ORT OpenVINO EP %s not run: the session fell back to %s" % (precision, worker.ready),
                      file=sys.stderr)
                worker.close()
                continue
            engines.append(Engine("ORT + OpenVINO EP", precision.lower(), None, worker.close,
                                  "onnxruntime-openvino %s" % worker.ready.get("version")))
            engines[-1].worker = worker
    if args.engines:
        import re

        keep = re.compile(args.engines)
        dropped = [e for e in engines if e.name != "PyTorch eager" and not keep.search("%s %s" % (e.name, e.precision))]
        for e in dropped:
            e.close()
        engines = [e for e in engines if e not in dropped]
    return engines, report


def time_engine(engine, x, runs):
    worker = getattr(engine, "worker", None)
    if worker is not None:
        return worker.ask({"run": runs})["ms"]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        engine.run(x)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def engine_outputs(engine, inputs):
    worker = getattr(engine, "worker", None)
    outs = []
    for x in inputs:
        if worker is not None:
            worker.ask({"input": x.tolist()})
            outs.append(np.asarray(worker.ask({"output": True})["output"], np.float32))
        else:
            outs.append(np.asarray(engine.run(x)))
    return np.stack(outs)


def ov_profile(path, threads, precision, x, top=8):
    """OpenVINO's per-layer times for one inference: the slowest layers and the time per exec type."""
    b = get_backend("openvino")(path, threads=threads, precision=precision, perf_counters=True)
    for _ in range(3):
        b.run(x)
    rows = b.profile()
    b.close()
    by_type = {}
    for r in rows:
        by_type[r["exec_type"]] = by_type.get(r["exec_type"], 0.0) + r["ms"]
    return {"total_ms": sum(r["ms"] for r in rows), "top": rows[:top],
            "by_exec_type": sorted(by_type.items(), key=lambda kv: -kv[1])}


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    gen, ckpt = load_generator(args.checkpoint)
    data = ckpt["data"]
    shape = (1, 1, args.size, args.size)
    calib = CalibrationSet(edge_maps("train", args.calibration, args.size), edge_maps("test", args.held_out, args.size),
                           "fmnist-shoes edges at %d²" % args.size)
    calib.output_range = 2.0
    widths = [float(w) for w in args.widths.split(",")]
    tmp = tempfile.mkdtemp(prefix="edgegan-engines-")
    print("measuring the GEMM peak (%d³)..." % args.gemm, file=sys.stderr)
    peaks, gemm = gemm_peaks(args.gemm, args.threads, tmp)
    rows, profiles, int8_reports = [], {}, {}
    load = [os.getloadavg()]
    for width in widths:
        sub = extract(gen, width, input_shape=shape)
        macs = cost(sub, shape)["macs"]
        engines, report = build_engines(args, sub, width, tmp, calib, args.ort_openvino)
        int8_reports[width] = {k: v for k, v in report.items() if k != "path"}
        refs = np.stack([sub(torch.from_numpy(h)).detach().numpy() for h in calib.held_out])
        x = calib.held_out[0]
        quality = {}
        for e in engines:
            out = engine_outputs(e, calib.held_out)
            quality[id(e)] = psnr(refs, out, 2.0)
            time_engine(e, x, 1)  # warm-up
        times = dict((id(e), []) for e in engines)
        for r in range(args.rounds):
            order = engines if r % 2 == 0 else engines[::-1]
            for e in order:
                times[id(e)] += time_engine(e, x, args.runs)
            print("width %g: round %d/%d" % (width, r + 1, args.rounds), file=sys.stderr)
        load.append(os.getloadavg())
        for e in engines:
            t = np.asarray(times[id(e)])
            base = "int8" if "int8" in e.precision else ("bf16" if "bf16" in e.precision else "fp32")
            if e.precision == "(auto)":
                base = "bf16" if "BF16" in get_backend("openvino").engine_info()["capabilities"] else "fp32"
            median = float(np.median(t))
            rows.append({"width": width, "engine": e.name, "precision": e.precision, "median_ms": median,
                         "p90_ms": float(np.percentile(t, 90)), "runs": len(t), "psnr_db": round(quality[id(e)], 2),
                         "gmacs": macs / 1e9, "gmac_per_s": macs / median / 1e6,
                         "peak_fraction": macs / median / 1e6 / peaks[base], "peak_precision": base, "note": e.note})
            e.close()
        if args.profile:
            fp32 = os.path.join(tmp, "w%g.onnx" % width)
            profiles["w%g" % width] = {"bf16": ov_profile(fp32, args.threads, "bf16", x),
                                      "fp32": ov_profile(fp32, args.threads, "fp32", x)}
    full = [r for r in rows if r["width"] == 1.0]
    eager = next(r for r in full if r["engine"] == "PyTorch eager")["median_ms"]
    for r in rows:
        same = next((f for f in full if f["engine"] == r["engine"] and f["precision"] == r["precision"]), None)
        r["speedup_vs_eager"] = eager / r["median_ms"] if r["width"] == 1.0 else None
        r["ratio_vs_w1"] = r["median_ms"] / same["median_ms"] if same else None
    print(format_table(rows, [
        ("width", "width", "{:g}"), ("engine", "engine", None), ("precision", "precision", None),
        ("median_ms", "median ms", "{:.1f}"), ("p90_ms", "p90 ms", "{:.1f}"), ("speedup_vs_eager", "x eager", "{:.2f}"),
        ("ratio_vs_w1", "ms/ms(1.0)", "{:.3f}"), ("psnr_db", "PSNR dB", "{:.1f}"), ("gmac_per_s", "GMAC/s", "{:.0f}"),
        ("peak_fraction", "of peak", "{:.0%}"), ("note", "note", None)]))
    print("\nGEMM peak (%d³, GMAC/s): %s" % (args.gemm, ", ".join("%s %.0f" % kv for kv in sorted(gemm.items()))))
    goals = evaluate_goals(rows)
    for line in goals["lines"]:
        print(line)
    print("load average before / after each width: %s" % ", ".join("%.2f" % l[0] for l in load))
    result = {"benchmark": "cpu_engines", "checkpoint": os.path.abspath(args.checkpoint),
              "model": {"arch": ckpt["generator"]["arch"], "trained_size": data.get("size"), "run_size": args.size,
                        "weights": "trained (%s)" % data.get("name")},
              "protocol": {"rounds": args.rounds, "runs": args.runs, "threads": args.threads, "alternating": True,
                           "latency": "median of all timed runs", "observer": args.observer,
                           "calibration": args.calibration, "held_out": args.held_out},
              "gemm": {"n": args.gemm, "gmac_per_s": gemm, "peaks": peaks}, "rows": rows, "goals": goals,
              "int8_gate": int8_reports, "profiles": profiles, "load_average": load,
              "environment": environment(threads=args.threads, backends=("onnxruntime", "openvino"))}
    write_json_atomic(args.json, result, force=True, indent=2)
    print("wrote %s" % args.json)


SAME_FILE = ("ONNX Runtime direct", "OpenVINO direct", "ORT + OpenVINO EP")


def evaluate_goals(rows):
    """The issue's goals on ``rows``: the best edgegan artifact (>= 35 dB) against the best engine run directly
    on the same fp32 ONNX file, against eager, and its width ratio; plus the best direct INT8 (another file:
    the Q/DQ model or NNCF's) for the INT8 choice."""
    full = [r for r in rows if r["width"] == 1.0]
    eager = next(r for r in full if r["engine"] == "PyTorch eager")
    ours = [r for r in full if r["engine"].startswith(("edgegan", "ONNX Runtime (edgegan")) and r["psnr_db"] >= 35]
    same_file = [r for r in full if r["engine"].startswith(SAME_FILE) and "int8" not in r["precision"]
                 and r["psnr_db"] >= 35]
    int8_direct = [r for r in full if r["engine"] == "OpenVINO direct" and "int8" in r["precision"]
                   and r["psnr_db"] >= 35]
    best_ours = min(ours, key=lambda r: r["median_ms"])
    best_direct = min(same_file, key=lambda r: r["median_ms"])

    def at(width, r):
        return next((x for x in rows if x["width"] == width and x["engine"] == r["engine"]
                     and x["precision"] == r["precision"]), None)

    narrow = at(0.25, best_ours)
    lines = [
        "best edgegan artifact at width 1.0 (>= 35 dB): %s %s, %.1f ms, %.1f dB" % (
            best_ours["engine"], best_ours["precision"], best_ours["median_ms"], best_ours["psnr_db"]),
        "best engine run directly on the same fp32 ONNX file (>= 35 dB): %s %s, %.1f ms -> edgegan/direct %.3f "
        "(goal <= 1.05)" % (best_direct["engine"], best_direct["precision"], best_direct["median_ms"],
                            best_ours["median_ms"] / best_direct["median_ms"]),
        "vs PyTorch eager fp32: %.2fx (goal >= 4) at %.1f dB (goal >= 35)" % (
            eager["median_ms"] / best_ours["median_ms"], best_ours["psnr_db"]),
    ]
    if int8_direct:
        best8 = min(int8_direct, key=lambda r: r["median_ms"])
        lines.append("best direct INT8 (its own file): %s %s, %.1f ms, %.1f dB" % (
            best8["engine"], best8["precision"], best8["median_ms"], best8["psnr_db"]))
    ratios = {}
    for r in full:
        n = at(0.25, r)
        if n:
            ratios["%s %s" % (r["engine"], r["precision"])] = n["median_ms"] / r["median_ms"]
    if narrow:
        lines.append("latency(0.25)/latency(1.0) of %s %s: %.3f (goal <= 0.10)" % (
            best_ours["engine"], best_ours["precision"], narrow["median_ms"] / best_ours["median_ms"]))
    return {"best_edgegan": best_ours, "best_direct_same_file": best_direct,
            "edgegan_over_direct": best_ours["median_ms"] / best_direct["median_ms"],
            "speedup_vs_eager": eager["median_ms"] / best_ours["median_ms"],
            "width_ratio": narrow["median_ms"] / best_ours["median_ms"] if narrow else None,
            "width_ratios": ratios, "lines": lines}


def reevaluate(path):
    """Print the goals of a results file again (``--evaluate``), e.g. after changing how they are judged."""
    with open(path) as f:
        result = json.load(f)
    for line in evaluate_goals(result["rows"])["lines"]:
        print(line)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--evaluate":
        reevaluate(sys.argv[2])
    else:
        main()
