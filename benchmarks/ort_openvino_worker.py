"""Times one ONNX file under onnxruntime's OpenVINO execution provider, on request, for cpu_engines.py.

The ``onnxruntime-openvino`` wheel replaces the ``onnxruntime`` package, so it lives in its own venv;
``cpu_engines.py --ort-openvino PYTHON`` starts this script with that venv's Python and alternates its
timings with the other engines'. Protocol on stdin/stdout, one JSON object a line:

    {"run": N}        → {"ms": [t1, ..., tN]}
    {"output": true}  → {"output": [...]} (the output for the fixed input, for PSNR)
    {"input": [...]}  → {"ok": true} (set the input, a nested list of the model's input shape)
"""

import json
import sys
import time

import numpy as np


def main():
    path, precision, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    # the EP's own "precision" option takes FP32 / FP16 / ACCURACY on a CPU; bf16 goes to OpenVINO as a device
    # property (load_config: JSON text), like the other settings edgegan's backend uses
    config = {"CPU": {"INFERENCE_PRECISION_HINT": precision.lower().replace("fp32", "f32"),
                      "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": str(threads)}}
    provider_options = {"device_type": "CPU", "num_of_threads": str(threads), "load_config": json.dumps(config)}
    session = ort.InferenceSession(path, options, providers=[("OpenVINOExecutionProvider", provider_options)])
    name = session.get_inputs()[0].name
    shape = [d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape]
    x = np.zeros(shape, np.float32)
    sys.stdout.write(json.dumps({"ready": session.get_providers(), "version": ort.__version__}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        request = json.loads(line)
        if "input" in request:
            x = np.asarray(request["input"], np.float32)
            reply = {"ok": True}
        elif "output" in request:
            reply = {"output": session.run(None, {name: x})[0].tolist()}
        else:
            times = []
            for _ in range(int(request["run"])):
                t0 = time.perf_counter()
                session.run(None, {name: x})
                times.append((time.perf_counter() - t0) * 1e3)
            reply = {"ms": times}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
