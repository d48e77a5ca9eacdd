"""PNG plots of a sweep: FPS vs width per mode, energy per frame, and the FPS–quality–power Pareto front.

matplotlib's object API with the Agg canvas (no pyplot, no global backend change, no display needed).
"""

import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .report import describe_environment

FPS_PNG = "fps_vs_width.png"
ENERGY_PNG = "energy_per_frame.png"
PARETO_PNG = "pareto.png"
MARKERS = "osD^v<>ph*"
DPI = 120


def _figure(width=9.0, height=5.6):
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _style(ax):
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", alpha=0.12)
    ax.tick_params(labelsize=10)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _title(fig, ax, title, result):
    ax.set_title(title, fontsize=13, loc="left", pad=22)
    ax.text(0.0, 1.015, "%s (%s) - %s" % (result.get("bundle_name"), result.get("target"), describe_environment(result)),
            transform=ax.transAxes, fontsize=9, color="0.35", va="bottom")


def _modes(result):
    seen = []
    for row in result["rows"]:
        if row["mode"] not in seen:
            seen.append(row["mode"])
    labels = dict((m["key"], m.get("label") or m["key"]) for m in result.get("modes", []))
    return [(key, labels.get(key, key)) for key in seen]


def _mode_label(key, label):
    return key if label == key else "%s (%s)" % (label, key)


def _variants(result):
    order = []
    for row in sorted(result["rows"], key=lambda r: (r.get("width") or 0.0, r.get("macs") or 0)):
        if row["variant"] not in order:
            order.append(row["variant"])
    return order


def _rows(result, mode):
    return sorted([r for r in result["rows"] if r["mode"] == mode], key=lambda r: (r.get("width") or 0.0,
                                                                                   r.get("macs") or 0))


def _save(fig, out_dir, name):
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, name), dpi=DPI)
    return name


def plot_fps_vs_width(result, out_dir, target_fps=None):
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    variants = _variants(result)
    xs = dict((v, n) for n, v in enumerate(variants))
    fps_all = []
    for n, (mode, label) in enumerate(_modes(result)):
        rows = _rows(result, mode)
        x = [xs[r["variant"]] for r in rows]
        y = [r["fps"] for r in rows]
        fps_all += y
        ax.plot(x, y, marker=MARKERS[n % len(MARKERS)], markersize=7, linewidth=2, label=_mode_label(mode, label))
        for xi, yi in zip(x, y):
            ax.annotate("%.0f" % yi if yi >= 10 else "%.1f" % yi, (xi, yi), textcoords="offset points",
                        xytext=(0, 8) if n % 2 == 0 else (0, -15), ha="center", fontsize=8.5, color="C%d" % n)
    if fps_all and max(fps_all) / max(min(fps_all), 1e-9) > 15:
        ax.set_yscale("log")
    ax.margins(x=0.06, y=0.12)
    if target_fps:
        ax.axhline(target_fps, color="crimson", linestyle="--", linewidth=1.2, label="target %g FPS" % target_fps)
    ticks = []
    for v in variants:
        row = next(r for r in result["rows"] if r["variant"] == v)
        macs = row.get("macs")
        ticks.append("%s\n%s" % (v, "%.3g GMACs" % (macs / 1e9) if macs and macs >= 1e8 else
                                 ("%.3g MMACs" % (macs / 1e6) if macs else "")))
    ax.set_xticks(range(len(variants)))
    ax.set_xticklabels(ticks)
    ax.set_xlabel("variant (width) and compute per frame", fontsize=11)
    ax.set_ylabel("FPS (batch 1, mean over the timed window)", fontsize=11)
    _style(ax)
    ax.legend(title="power mode", fontsize=9.5, title_fontsize=10, loc="best", framealpha=0.9)
    _title(fig, ax, "FPS vs width per power mode", result)
    return _save(fig, out_dir, FPS_PNG)


def plot_energy(result, out_dir):
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    power = result.get("power") or {}
    if not power.get("available"):
        ax.axis("off")
        notes = power.get("notes") or ["no power meter answered"]
        text = ("Energy per frame: not measured on this machine\n\n"
                "power source: %s\n%s\n\n"
                "Needs a power meter: Jetson INA3221 rails, Intel RAPL (readable energy_uj),\n"
                "or a laptop discharging its battery (power_now)." % (
                    power.get("source"), "\n".join("- " + n for n in notes[:4])))
        ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=11.5, wrap=True,
                bbox=dict(boxstyle="round,pad=0.8", facecolor="0.95", edgecolor="0.6"))
        _title(fig, ax, "Energy per frame", result)
        return _save(fig, out_dir, ENERGY_PNG)
    variants = _variants(result)
    modes = _modes(result)
    group = 0.8
    width = group / max(1, len(modes))
    has_active = all(r.get("active_energy_mj") is not None for r in result["rows"])
    for n, (mode, label) in enumerate(modes):
        by_variant = dict((r["variant"], r) for r in _rows(result, mode))
        xs = [i - group / 2 + width * (n + 0.5) for i in range(len(variants))]
        total = [by_variant[v]["energy_mj"] if v in by_variant else 0.0 for v in variants]
        bars = ax.bar(xs, total, width * 0.92, alpha=0.35 if has_active else 0.9,
                      color="C%d" % n, edgecolor="C%d" % n,
                      label=None if has_active else _mode_label(mode, label))
        if has_active:
            active = [by_variant[v]["active_energy_mj"] if v in by_variant else 0.0 for v in variants]
            ax.bar(xs, active, width * 0.92, color="C%d" % n, label=_mode_label(mode, label) + ": above idle")
        for bar, value in zip(bars, total):
            ax.annotate("%.3g" % value, (bar.get_x() + bar.get_width() / 2, value), textcoords="offset points",
                        xytext=(0, 3), ha="center", fontsize=8)
    ax.set_xticks(range(len(variants)))
    ax.set_xticklabels(variants)
    ax.set_xlabel("variant (width)", fontsize=11)
    ax.set_ylabel("energy per frame (mJ)", fontsize=11)
    _style(ax)
    meters = ", ".join(power.get("meters") or []) or power.get("source")
    ax.legend(title="mode (light: total incl. idle)" if has_active else "mode", fontsize=9, title_fontsize=9.5,
              loc="best", framealpha=0.9)
    _title(fig, ax, "Energy per frame (power meter: %s)" % meters, result)
    return _save(fig, out_dir, ENERGY_PNG)


def plot_pareto(result, out_dir):
    rows = result["rows"]
    fig = _figure(9.0, 6.0)
    ax = fig.add_subplot(1, 1, 1)
    has_quality = rows and all(r.get("quality") is not None for r in rows)
    has_energy = rows and all(r.get("energy_mj") is not None for r in rows)
    qkey = "quality" if has_quality else "width"
    ylabel = ("quality: %s (bundle metrics)" % rows[0].get("quality_metric")) if has_quality \
        else "width (no quality metrics in the bundle)"
    scatter = None
    if has_energy:
        energies = [r["energy_mj"] for r in rows]
        vmin, vmax = min(energies), max(energies)
    for n, (mode, label) in enumerate(_modes(result)):
        mrows = [r for r in rows if r["mode"] == mode]
        kwargs = dict(marker=MARKERS[n % len(MARKERS)], s=[110 if r.get("pareto") else 60 for r in mrows],
                      edgecolors=["black" if r.get("pareto") else "none" for r in mrows], linewidths=1.4,
                      label=_mode_label(mode, label), zorder=3)
        if has_energy:
            scatter = ax.scatter([r["fps"] for r in mrows], [r[qkey] for r in mrows],
                                 c=[r["energy_mj"] for r in mrows], cmap="viridis_r", vmin=vmin, vmax=vmax, **kwargs)
        else:
            ax.scatter([r["fps"] for r in mrows], [r[qkey] for r in mrows], color="C%d" % n, **kwargs)
        for r in mrows:
            ax.annotate("%s @ %s" % (r["variant"], r["mode"]), (r["fps"], r[qkey]), textcoords="offset points",
                        xytext=(7, 6) if r.get("pareto") else (-7, -13), ha="left" if r.get("pareto") else "right",
                        fontsize=8, color="0.1" if r.get("pareto") else "0.4")
    front = sorted([r for r in rows if r.get("pareto")], key=lambda r: r["fps"])
    if len(front) > 1:
        ax.plot([r["fps"] for r in front], [r[qkey] for r in front], color="black", linewidth=1, linestyle=":",
                zorder=2)
    fps = [r["fps"] for r in rows]
    if fps and max(fps) / max(min(fps), 1e-9) > 15:
        ax.set_xscale("log")
    if scatter is not None:
        bar = fig.colorbar(scatter, ax=ax, pad=0.02)
        bar.set_label("energy per frame (mJ, lower is better)", fontsize=10)
    ax.set_xlabel("FPS (higher is better)", fontsize=11)
    ax.set_ylabel(ylabel + " (higher is better)", fontsize=11)
    _style(ax)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], linestyle="none", marker=MARKERS[n % len(MARKERS)], markersize=8,
                      markerfacecolor="0.6" if has_energy else "C%d" % n, markeredgecolor="none",
                      label=_mode_label(mode, label)) for n, (mode, label) in enumerate(_modes(result))]
    handles.append(Line2D([], [], linestyle="none", marker="o", markersize=9, markerfacecolor="white",
                          markeredgecolor="black", markeredgewidth=1.4, label="Pareto-optimal"))
    if len(front) > 1:
        handles.append(Line2D([], [], color="black", linewidth=1, linestyle=":", label="Pareto front"))
    ax.legend(handles=handles, fontsize=9, loc="best", framealpha=0.9)
    _title(fig, ax, "FPS - quality%s trade-off (outlined: Pareto-optimal)" % (" - energy" if has_energy else ""),
           result)
    ax.margins(x=0.14, y=0.08)
    fig.tight_layout()
    if not has_energy:
        fig.subplots_adjust(bottom=0.14)
        fig.text(0.01, 0.01, "power not measured here: the front is over FPS and %s only" % qkey, ha="left",
                 va="bottom", fontsize=9, color="0.35")
    fig.savefig(os.path.join(out_dir, PARETO_PNG), dpi=DPI)
    return PARETO_PNG


def plot_all(result, out_dir, target_fps=None):
    target_fps = target_fps if target_fps is not None else result.get("target_fps")
    """Write the three PNGs into ``out_dir``; returns their file names."""
    if not result.get("rows"):
        return []
    return [plot_fps_vs_width(result, out_dir, target_fps), plot_energy(result, out_dir), plot_pareto(result, out_dir)]
