#!/usr/bin/env python3
"""The warm-start showcase (issue 5): docs/payloads.svg and a markdown table
from the JSON files bench/run.sh wrote (payload_<name>.json from
bench_payload_<name>, payload_pss.json from bench_payload_pss).

usage: payload_chart.py RESULTS_DIR [--svg PATH]   (default PATH: docs/payloads.svg)

Python's standard library only: the SVG is written by hand, so a fresh
machine or CI needs nothing more.  summarize.py imports this module for its
payload section.
"""
import html
import json
import math
import os
import sys

ORDER = ["sqlite", "lua", "python", "compress", "pcre2", "cxx"]
SCALE = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def _rows(path):
    """{run_name: row}: the median of repeated benchmarks, else the single run."""
    with open(path) as f:
        data = json.load(f)
    rows = {}
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") == "median":
            rows[b["run_name"]] = b
    for b in data["benchmarks"]:
        if b.get("error_occurred"):
            rows[b["run_name"]] = {"error": b.get("error_message", "error")}
        elif b.get("run_type") != "aggregate":
            rows.setdefault(b["run_name"], b)
    return data.get("context", {}), rows


def _find(rows, prefix):
    """The row whose name is prefix or prefix + "/<benchmark suffixes>"."""
    for name, row in rows.items():
        if name == prefix or name.startswith(prefix + "/"):
            return row
    return None


def _seconds(row):
    if not row or "error" in row:
        return None
    return row["real_time"] * SCALE[row["time_unit"]]


def _per_second(row):
    if not row or "error" in row:
        return None
    return row.get("items_per_second")


def _error(row):
    return "missing" if row is None else row.get("error")


def load_payloads(directory):
    """One dict per payload_<name>.json found, in ORDER, then any others."""
    names = sorted((f[len("payload_"):-len(".json")] for f in os.listdir(directory)
                    if f.startswith("payload_") and f.endswith(".json") and f != "payload_pss.json"),
                   key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    out = []
    for name in names:
        ctx, rows = _rows(os.path.join(directory, f"payload_{name}.json"))
        gate_row = _find(rows, "steady/gate/auto")
        out.append({
            "name": name,
            "context": ctx,
            "inputs": ctx.get("payload_inputs", "?"),
            "cold": _seconds(_find(rows, "cold/process")),
            "exec_only": _seconds(_find(rows, "cold/exec_only")),
            "warm_process": _seconds(_find(rows, "warm/process")),
            "warm": _seconds(_find(rows, "warm/in_process/auto")),
            "warm_none": _seconds(_find(rows, "warm/in_process/none")),
            "native_ops": _per_second(_find(rows, "steady/native")),
            "gate_ops": _per_second(gate_row),
            "gate_none_ops": _per_second(_find(rows, "steady/gate/none")),
            "backend": gate_row.get("label", "") if gate_row else "",
            "init_ms": (_find(rows, "steady/native") or {}).get("init_ms"),
            "mismatched": (_find(rows, "steady/native") or {}).get("mismatched_outputs"),
            "image_MB": (_find(rows, "warm/in_process/auto") or {}).get("image_file_MB"),
            "image_disk_MB": (_find(rows, "warm/in_process/auto") or {}).get("image_disk_MB"),
            "errors": {k: _error(_find(rows, k)) for k in
                       ["cold/process", "warm/process", "warm/in_process/auto", "steady/gate/auto", "steady/native"]
                       if _error(_find(rows, k))},
        })
    return out


def load_pss(directory):
    """The pss/<name> row of payload_pss.json (with "payload": name), or None."""
    path = os.path.join(directory, "payload_pss.json")
    if not os.path.exists(path):
        return None
    _, rows = _rows(path)
    for name, row in rows.items():
        if name.startswith("pss/"):
            return dict(row, payload=name.split("/")[1])
    return None


def _ratio(a, b):
    return a / b if a is not None and b else None


def _ms(s):
    if s is None:
        return "-"
    ms = s * 1e3
    return f"{ms:.3g} ms" if ms < 100 else f"{ms:,.0f} ms"


def _num(x, digits=3):
    if x is None:
        return "-"
    return f"{x:,.0f}" if x >= 1000 else f"{x:.{digits}g}"


def _fixed(x):
    return "-" if x is None else f"{x:.2f}"


def _times(x):
    return "-" if x is None else f"×{_num(x)}"


def markdown_table(payloads):
    backend = next((p["backend"] for p in payloads if p["backend"]), "auto")
    lines = ["| payload | cold start (new process: init + 1st op) | warm start (map + 1st op + unmap) | ×faster"
             " | warm start, new client process | ×faster | native ops/s"
             f" | gate ops/s ({backend}) | ÷ native | gate ops/s (none) | ÷ native |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for p in payloads:
        lines.append(
            f"| {p['name']} | {_ms(p['cold'])} | {_ms(p['warm'])} | {_times(_ratio(p['cold'], p['warm']))}"
            f" | {_ms(p['warm_process'])} | {_times(_ratio(p['cold'], p['warm_process']))}"
            f" | {_num(p['native_ops'])} | {_num(p['gate_ops'])} | {_fixed(_ratio(p['gate_ops'], p['native_ops']))}"
            f" | {_num(p['gate_none_ops'])} | {_fixed(_ratio(p['gate_none_ops'], p['native_ops']))} |")
    return "\n".join(lines)


def pss_lines(r):
    if r is None:
        return ["no payload_pss.json"]
    if "error" in r:
        return [f"bench_payload_pss: {r['error']}"]
    n = r["clients"]
    return [
        f"{n:.0f} clients holding the {r.get('payload', r.get('label', '?'))} image"
        f" ({r['image_file_MB']:.1f} MB file, {r['image_disk_MB']:.1f} MB allocated):",
        f"  total PSS {r['pss_total_MB']:.1f} MB = {r['pss_per_client_MB']:.2f} MB per client"
        f" (anon {r['pss_anon_total_MB']:.1f} MB, file {r['pss_file_total_MB']:.1f} MB)",
        f"  vs {n:.0f} x one client's RSS ({r['rss_per_client_MB']:.1f} MB) = {r['rss_x_clients_MB']:.1f} MB:"
        f" PSS/RSS sum {r['pss_total_per_rss_x_clients']:.3f}",
        f"  vs the image's allocated size: total PSS / image = {r['pss_total_per_image_disk']:.2f}",
        f"  image ranges only: total PSS {r['image_pss_total_MB']:.2f} MB,"
        f" RSS per client {r['image_rss_per_client_MB']:.2f} MB,"
        f" private dirty per client {r['image_private_dirty_per_client_MB']:.3f} MB",
        f"  vs {n:.0f} native processes (init + 1st op, peak RSS {r['native_peak_rss_MB']:.1f} MB each)"
        f" = {r['native_x_clients_MB']:.0f} MB: x{r['pss_total_per_native_x_clients']:.3f}",
    ]


# ---- SVG ----

FONT = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\""
COLORS = {"cold": "#c0504d", "warm_process": "#f0a030", "warm": "#4f81bd",
          "native_ops": "#7f7f7f", "gate_ops": "#4f81bd", "gate_none_ops": "#9bbb59"}


def _text(x, y, s, size=12, anchor="start", weight="normal", fill="#222"):
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}"'
            f' fill="{fill}" {FONT}>{html.escape(s)}</text>')


def _log_axis(values):
    vs = [v for v in values if v]
    lo = math.floor(math.log10(min(vs))) if vs else 0
    hi = math.ceil(math.log10(max(vs))) if vs else 1
    return lo, max(hi, lo + 1)


def _panel(title, unit_fmt, payloads, series, note, y0, width, label_w):
    """Grouped horizontal bars, log scale: one group per payload, one bar per series
    (key, legend, ratio_of); returns (svg parts, height)."""
    bar_h, gap, group_gap = 14, 3, 14
    plot_x, plot_w = label_w, width - label_w - 170
    parts = [_text(10, y0 + 18, title, 15, weight="bold"), _text(10, y0 + 36, note, 11, fill="#555")]
    lo, hi = _log_axis([p[k] for p in payloads for k, _, _ in series])

    def xpos(v):
        return plot_x + (math.log10(v) - lo) / (hi - lo) * plot_w

    top = y0 + 62
    # Legend
    lx = plot_x
    for key, legend, _ in series:
        parts.append(f'<rect x="{lx}" y="{y0 + 44}" width="10" height="10" fill="{COLORS[key]}"/>')
        parts.append(_text(lx + 14, y0 + 53, legend, 11))
        lx += 14 + 6.5 * len(legend) + 18
    group_h = len(series) * (bar_h + gap) + group_gap
    bottom = top + group_h * len(payloads)
    # Grid: one line per decade
    for e in range(lo, hi + 1):
        x = xpos(10 ** e)
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{bottom - group_gap + 4}"'
                     ' stroke="#ddd" stroke-width="1"/>')
        parts.append(_text(x, bottom - group_gap + 18, unit_fmt(10 ** e), 10, "middle", fill="#555"))
    for i, p in enumerate(payloads):
        gy = top + i * group_h
        parts.append(_text(plot_x - 8, gy + len(series) * (bar_h + gap) / 2 + 4, p["name"], 13, "end", "bold"))
        for j, (key, legend, ratio_of) in enumerate(series):
            y = gy + j * (bar_h + gap)
            v = p[key]
            if not v:
                parts.append(_text(plot_x + 4, y + bar_h - 3, f"{legend}: no result", 10, fill="#a00"))
                continue
            x = xpos(v)
            parts.append(f'<rect x="{plot_x}" y="{y}" width="{max(x - plot_x, 1):.1f}" height="{bar_h}"'
                         f' fill="{COLORS[key]}"><title>{html.escape(legend)}: {unit_fmt(v)}</title></rect>')
            label = unit_fmt(v)
            if ratio_of:
                r = ratio_of(p)
                if r:
                    label += f"  ({r})"
            parts.append(_text(x + 4, y + bar_h - 3, label, 10))
    return parts, bottom - group_gap + 30 - y0


def _ms_fmt(s):
    ms = s * 1e3
    return f"{ms:.3g} ms" if ms < 1000 else f"{ms / 1e3:.3g} s"


def _ops_fmt(v):
    if v >= 1e6:
        return f"{v / 1e6:.3g}M/s"
    if v >= 1e3:
        return f"{v / 1e3:.3g}k/s"
    return f"{v:.3g}/s"


def svg(payloads, pss, subtitle):
    width, label_w = 900, 100
    parts, y = [], 0
    parts.append(_text(10, 24, "subctx: real payloads, cold start vs warm start (issue 5)", 18, weight="bold"))
    parts.append(_text(10, 42, subtitle, 11, fill="#555"))
    y = 52

    def faster(key):
        def label(p):
            r = _ratio(p["cold"], p[key])
            if not r:
                return None
            return f"×{_num(r)} faster" if r >= 1 else f"×{_num(1 / r)} slower"
        return label
    first, h = _panel(
        "First operation: time to the first result (log scale, shorter is better)", _ms_fmt, payloads,
        [("cold", "cold: new process, init + 1st op", None),
         ("warm_process", "warm: new client process", faster("warm_process")),
         ("warm", "warm: map + 1st op in a running client", faster("warm"))],
        "cold = payload_<name>_server first; warm = the snapshot image mapped by a client (protection: "
        + (payloads[0]["backend"] if payloads and payloads[0]["backend"] else "auto") + ")",
        y, width, label_w)
    parts += first
    y += h + 10

    def vs_native(key):
        return lambda p: (f"×{_fixed(_ratio(p[key], p['native_ops']))} of native"
                          if _ratio(p[key], p["native_ops"]) else None)
    steady, h = _panel(
        "Steady state: operations per second over all inputs (log scale, longer is better)", _ops_fmt, payloads,
        [("native_ops", "native (in process)", None),
         ("gate_ops", "through the gate (" + (payloads[0]["backend"] if payloads and payloads[0]["backend"]
                                          else "auto") + ")", vs_native("gate_ops")),
         ("gate_none_ops", "through the gate (no protection)", vs_native("gate_none_ops"))],
        "each input in turn, the same sequence on both sides; sc.function<const char*(const char*)>(\"run\")",
        y, width, label_w)
    parts += steady
    y += h + 10
    if pss and "error" not in pss:
        n = pss["clients"]
        parts.append(_text(10, y + 16, f"Page sharing: {n:.0f} clients holding the {pss.get('payload', '')} image", 15,
                           weight="bold"))
        line = (f"total PSS {pss['pss_total_MB']:.1f} MB ({pss['pss_per_client_MB']:.2f} MB per client)"
                f" vs {n:.0f} × one client's RSS {pss['rss_x_clients_MB']:.0f} MB"
                f" and {n:.0f} native processes' peak RSS {pss['native_x_clients_MB']:.0f} MB;"
                f" image {pss['image_file_MB']:.1f} MB ({pss['image_disk_MB']:.1f} MB allocated)")
        parts.append(_text(10, y + 36, line, 11))
        y += 50
    body = "\n".join(parts)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y + 10}"'
            f' viewBox="0 0 {width} {y + 10}">\n<rect width="100%" height="100%" fill="white"/>\n{body}\n</svg>\n')


def subtitle_of(payloads):
    ctx = payloads[0]["context"] if payloads else {}
    return (f"{ctx.get('date', '')}, {ctx.get('host_name', '')}: {ctx.get('num_cpus', '?')} CPUs"
            f" @ {ctx.get('mhz_per_cpu', '?')} MHz, load {', '.join(f'{x:.2f}' for x in ctx.get('load_avg', []))};"
            " bench/run.sh")


def report(directory):
    """The lines summarize.py prints: per-payload details, the markdown table, PSS."""
    payloads = load_payloads(directory)
    if not payloads:
        return ["no payload_<name>.json results"]
    out = [f"  {'payload':9s} {'inputs':>6s} {'image MB':>8s} {'exec only':>10s} {'cold':>10s} {'warm proc':>10s}"
           f" {'warm':>10s} {'warm none':>10s} {'native/s':>9s} {'gate/s':>9s} {'none/s':>9s} {'init ms':>8s} {'mism':>4s}"]
    for p in payloads:
        mism = "-" if p["mismatched"] is None else f"{p['mismatched']:.0f}"
        out.append(f"  {p['name']:9s} {p['inputs']:>6s} {_num(p['image_MB']):>8s} {_ms(p['exec_only']):>10s}"
                   f" {_ms(p['cold']):>10s} {_ms(p['warm_process']):>10s} {_ms(p['warm']):>10s}"
                   f" {_ms(p['warm_none']):>10s} {_num(p['native_ops']):>9s} {_num(p['gate_ops']):>9s}"
                   f" {_num(p['gate_none_ops']):>9s} {_num(p['init_ms']):>8s} {mism:>4s}")
        for name, err in p["errors"].items():
            out.append(f"    {name}: {err}")
    out += ["", markdown_table(payloads), ""]
    out += pss_lines(load_pss(directory))
    return out


def main():
    args = sys.argv[1:]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = os.path.join(root, "docs", "payloads.svg")
    if "--svg" in args:
        i = args.index("--svg")
        out = args[i + 1]
        del args[i:i + 2]
    if len(args) != 1:
        sys.exit(__doc__)
    directory = args[0]
    payloads = load_payloads(directory)
    if not payloads:
        sys.exit(f"{directory}: no payload_<name>.json")
    pss = load_pss(directory)
    with open(out, "w") as f:
        f.write(svg(payloads, pss, subtitle_of(payloads)))
    print(f"wrote {out}", file=sys.stderr)
    print(markdown_table(payloads))
    print()
    print("\n".join(pss_lines(pss)))


if __name__ == "__main__":
    main()
