#!/usr/bin/env python3
"""Prints the table of ratios from the JSON files bench/run.sh wrote.

usage: summarize.py RESULTS_DIR   (call.json, map.json, snapshot.json, warm.json)

Every ratio divides two numbers measured in the same run of the same binary.
Where a benchmark was repeated, the median repetition is used.
"""
import json
import os
import sys


def load(directory, name):
    path = os.path.join(directory, name + ".json")
    if not os.path.exists(path):
        return None, {}
    with open(path) as f:
        data = json.load(f)
    rows = {}
    for b in data["benchmarks"]:  # first: the median of repeated benchmarks
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") == "median":
            rows[b["run_name"]] = b
    for b in data["benchmarks"]:  # then: single runs and errors
        if b.get("error_occurred"):
            rows[b["run_name"]] = {"error": b.get("error_message", "error")}
        elif b.get("run_type") != "aggregate":
            rows.setdefault(b["run_name"], b)
    return data["context"], rows


def time_in(row, unit):
    scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}
    return row["real_time"] * scale[row["time_unit"]] / scale[unit]


def find(rows, prefix):
    for name, row in rows.items():
        if name.startswith(prefix):
            return row
    return None


def fmt(x, digits=3):
    if x is None:
        return "-"
    if x >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def call_table(rows):
    print("Call overhead: add1(x), result feeds the next call; ratio to the direct call")
    direct = rows.get("BM_direct")
    if not direct or "error" in direct:
        print("  (no direct-call baseline)")
        return
    base = time_in(direct, "ns")
    for key, label in [("BM_direct", "direct call (noipa, same binary)"),
                       ("BM_gate_by_name", 'gate: sc.call<Sig>("add1", x)'),
                       ("BM_gate_handle", 'gate: sc.function<Sig>("add1") handle'),
                       ("BM_gate_c_api", "gate: sbc_request_call (C API)")]:
        row = rows.get(key)
        if not row or "error" in row:
            print(f"  {label:40s} {row['error'] if row else 'missing'}")
            continue
        t = time_in(row, "ns")
        print(f"  {label:40s} {t:8.1f} ns   x{t / base:,.0f}")


def map_table(rows):
    print("Map latency, us per iteration (image hot in the page cache); floor = plain mmap of the same segments")
    print(f"  {'image':22s} {'segs':>5s} {'file MB':>8s} {'map+unmap':>10s} {'+1st call':>10s}"
          f" {'floor':>8s} {'map/floor':>9s} {'map/1MB':>8s}")
    ref = rows.get("map/heap_mb:1")
    ref_t = time_in(ref, "us") if ref and "error" not in ref else None
    for name in ["heap_mb:1", "heap_mb:100", "heap_mb:1024",
                 "extra_segments:10", "extra_segments:100", "extra_segments:1000"]:
        m, c, r = rows.get("map/" + name), rows.get("map_first_call/" + name), rows.get("raw_mmap/" + name)
        if not m or "error" in m:
            print(f"  {name:22s} {m['error'] if m else 'missing'}")
            continue
        tm = time_in(m, "us")
        tc = time_in(c, "us") if c and "error" not in c else None
        tr = time_in(r, "us") if r and "error" not in r else None
        print(f"  {name:22s} {m['segments']:5.0f} {m['file_MB']:8.1f} {tm:10.0f} {fmt(tc):>10s}"
              f" {fmt(tr):>8s} {fmt(tm / tr if tr else None):>9s} {fmt(tm / ref_t if ref_t else None):>8s}")
    a, b = rows.get("map/extra_segments:10"), rows.get("map/extra_segments:1000")
    if a and b and "error" not in a and "error" not in b:
        per = (time_in(b, "us") - time_in(a, "us")) / (b["segments"] - a["segments"])
        print(f"  per extra segment: {per:.2f} us (map + unmap)")


def snapshot_table(rows):
    print("Snapshot of a 1 GiB heap, half zero pages (64 KiB runs); floor = write only the data runs to a sparse file")
    print(f"  {'zero pages':12s} {'snapshot ms':>11s} {'heap MB/s':>10s} {'floor ms':>9s} {'x floor':>8s}"
          f" {'file MB':>8s} {'disk MB':>8s} {'disk/file':>9s}")
    for mode in ["untouched", "touched"]:
        row = find(rows, f"snapshot_1g_half_zero/{mode}")
        if not row or "error" in row:
            print(f"  {mode:12s} {row['error'] if row else 'missing'}")
            continue
        print(f"  {mode:12s} {time_in(row, 'ms'):11.0f} {row['heap_MB_per_s']:10.0f} {row['floor_s'] * 1e3:9.0f}"
              f" {row['vs_floor']:8.2f} {row['file_MB']:8.0f} {row['disk_MB']:8.0f} {row['disk_per_file']:9.3f}")


def warm_table(rows):
    print("Warm start: SQLite table of 200k rows + index")
    init, first = find(rows, "server_init"), rows.get("map_first_call")
    only, warm = rows.get("map_only"), rows.get("warm_call")
    if not init or not first or "error" in init or "error" in first:
        print("  (missing)")
        return
    ti, tf = time_in(init, "ms"), time_in(first, "ms")
    print(f"  server init (in the server)     {ti:10.1f} ms")
    print(f"  client map + first call + unmap {tf:10.3f} ms   init / this = x{ti / tf:,.0f}"
          f"   (image {first['file_MB']:.0f} MB, {first['disk_MB']:.0f} MB on disk)")
    if only and "error" not in only:
        print(f"  client map + unmap              {time_in(only, 'ms'):10.3f} ms")
    if warm and "error" not in warm:
        print(f"  query, subcontext kept mapped   {time_in(warm, 'ms'):10.4f} ms")


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "."
    context = None
    for name, table in [("call", call_table), ("map", map_table), ("snapshot", snapshot_table),
                        ("warm", warm_table)]:
        ctx, rows = load(directory, name)
        if ctx is None:
            print(f"{name}: no results")
            continue
        if context is None:
            context = ctx
            print(f"# {ctx.get('date', '')}  {ctx.get('num_cpus', '?')} CPUs @ {ctx.get('mhz_per_cpu', '?')} MHz,"
                  f" load {ctx.get('load_avg', '?')}, libbenchmark {ctx.get('library_build_type', '?')} build")
        table(rows)
        print()


if __name__ == "__main__":
    main()
