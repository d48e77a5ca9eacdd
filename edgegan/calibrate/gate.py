"""The INT8 quality gate: quantize, measure against fp32 on held-out inputs, keep sensitive layers in float.

INT8 can wreck image outputs, so a quantized artifact is accepted only when its PSNR against the fp32
network on held-out inputs reaches the profile's threshold. Otherwise the gate retries with the first
and last layers kept in float (they touch pixels directly), then measures each layer's sensitivity
(PSNR with only that layer in INT8) and keeps the most sensitive layers in float one by one until the
threshold is met — or refuses, saying how far it got.
"""

from ..errors import TargetError


def quality_gate(quantize, evaluate, layers, threshold, max_kept_fraction=0.5):
    """Run the gate.

    ``quantize(kept_float)`` writes an artifact with the named layers left in float and returns its path;
    ``evaluate(path)`` returns its PSNR (dB) against fp32 on held-out inputs; ``layers`` lists the
    quantizable layers in graph order. Returns ``{"path", "psnr_db", "threshold_db", "kept_float",
    "rounds", "sensitivity"}``; raises ``TargetError`` when no allowed choice meets ``threshold``.
    """
    rounds = []

    def attempt(kept, why):
        path = quantize(list(kept))
        psnr = float(evaluate(path))
        rounds.append({"kept_float": list(kept), "psnr_db": round(psnr, 2), "why": why})
        return path, psnr

    def result(path, psnr, kept, sensitivity=None):
        return {"path": path, "psnr_db": round(psnr, 2), "threshold_db": threshold, "kept_float": list(kept),
                "rounds": rounds, "sensitivity": sensitivity or {}}

    path, psnr = attempt([], "every layer in INT8")
    if psnr >= threshold or not layers:
        if psnr < threshold:
            raise TargetError("INT8 reaches %.1f dB against fp32, below the gate's %.1f dB, and there is no "
                              "layer to keep in float" % (psnr, threshold))
        return result(path, psnr, [])
    kept = [layers[0]] + ([layers[-1]] if len(layers) > 1 else [])
    path, psnr = attempt(kept, "first and last layers in float")
    if psnr >= threshold:
        return result(path, psnr, kept)

    sensitivity = {}
    for layer in layers:
        alone = [other for other in layers if other != layer]
        sensitivity[layer] = round(float(evaluate(quantize(alone))), 2)
    limit = max(len(kept), int(len(layers) * max_kept_fraction))
    for layer in sorted(layers, key=lambda name: sensitivity[name]):
        if layer in kept:
            continue
        if len(kept) >= limit:
            break
        kept.append(layer)
        path, psnr = attempt(kept, "most sensitive layers in float")
        if psnr >= threshold:
            return result(path, psnr, kept, sensitivity)
    raise TargetError("INT8 does not reach the gate's %.1f dB against fp32 even with %d of %d layers kept in float "
                      "(best %.1f dB); use fp16, lower [calibrate] min_psnr_db in the profile, or calibrate with "
                      "more representative data (--calibration DIR)"
                      % (threshold, len(kept), len(layers), max(r["psnr_db"] for r in rounds)))
