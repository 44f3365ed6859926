#!/usr/bin/env python3
"""Prints the table of ratios from the JSON files bench/run.sh wrote.

usage: summarize.py RESULTS_DIR   (call.json, map.json, snapshot.json, warm.json, protection.json)

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


BACKENDS = ["none", "mprotect", "mprotect_exact", "pkey"]


def prot_row(rows, name):
    row = rows.get(name + "/real_time") or rows.get(name)
    return row


def prot_ns(rows, name):
    row = prot_row(rows, name)
    return time_in(row, "ns") if row and "error" not in row else None


def prot_error(rows, name):
    row = prot_row(rows, name)
    return "missing" if row is None else row.get("error")


def us(x):
    return "-" if x is None else f"{x / 1e3:.2f} us"


def protection_table(rows):
    direct = prot_ns(rows, "call/direct")
    pipe_any, pipe_same = prot_ns(rows, "call/pipe_any_cpu"), prot_ns(rows, "call/pipe_same_cpu")
    print("Protection backends: add1 through a Function<Sig> handle; each backend maps the image afresh")
    print(f"  direct call {fmt(direct)} ns; pipe round trip to a helper process (8 bytes each way):"
          f" any CPU {us(pipe_any)}, same CPU {us(pipe_same)}")
    floors = [(prot_ns(rows, f"floor/mprotect_pair/pages:{p}/present:{n}"), label)
              for p, n, label in [(1, 1, "1 page"), (512, 1, "2 MiB, 1 present"), (512, 64, "2 MiB, 64 present")]]
    print("  floor, plain mprotect pair: " + ", ".join(f"{label} {us(t)}" for t, label in floors))

    def backend_lines(prefix, title):
        print(title)
        print(f"  {'backend':15s} {'ns/call':>10s} {'x direct':>9s} {'-direct ns':>10s} {'pipe_any/':>9s}"
              f" {'pipe_same/':>10s} {'syscalls':>8s} {'clusters':>8s} {'vmas':>5s} {'present':>8s} {'2M blks':>7s}")
        base = prot_ns(rows, f"{prefix}/direct") or direct
        for b in BACKENDS:
            name = f"{prefix}/{b}"
            t = prot_ns(rows, name)
            if t is None:
                print(f"  {b:15s} {prot_error(rows, name)}")
                continue
            r = prot_row(rows, name)
            print(f"  {b:15s} {fmt(t):>10s} {fmt(t / base if base else None):>9s} {fmt(t - base if base else None):>10s}"
                  f" {fmt(pipe_any / t if pipe_any else None):>9s} {fmt(pipe_same / t if pipe_same else None):>10s}"
                  f" {r.get('syscalls_per_call', 0):8.0f} {r.get('clusters', 0):8.0f} {r.get('vmas', 0):5.0f}"
                  f" {r.get('present_pages', 0):8.0f} {r.get('blocks_2m', 0):7.0f}")
        any_row = next((prot_row(rows, f"{prefix}/{b}") for b in BACKENDS if prot_ns(rows, f"{prefix}/{b}")), None)
        if any_row:
            print(f"  (image: {any_row.get('segments', 0):.0f} segments, {any_row.get('image_MB', 0):.1f} MB;"
                  " syscalls = mprotect calls per call, open + close; present = image pages present in this client)")

    backend_lines("call", "Small image (bench_image_server, 1 MB heap): add1")
    backend_lines("sqlite_lua/add1", "SQLite/Lua image (bench_protection_server): add1 after 1000 SQLite lookups + 1000 Lua calls")

    print("SQLite/Lua image, real work (ns/call; x = / the same code run directly in this process)")
    print(f"  {'export':10s} {'direct':>9s} " + " ".join(f"{b:>22s}" for b in BACKENDS))
    for work in ["add1", "lookup", "lua_score"]:
        d = prot_ns(rows, f"sqlite_lua/{work}/direct")
        cells = []
        for b in BACKENDS:
            t = prot_ns(rows, f"sqlite_lua/{work}/{b}")
            cells.append("-" if t is None else f"{fmt(t)} (x{fmt(t / d if d else None)})")
        print(f"  {work:10s} {fmt(d):>9s} " + " ".join(f"{c:>22s}" for c in cells))

    print("Raw-call path: a plain function pointer whose call faults into the Matchmaker (small image, add1)")
    print(f"  {'backend':15s} {'raw ns':>10s} {'handle ns':>10s} {'raw/handle':>10s} {'raw-handle':>11s}")
    for b in BACKENDS:
        raw, handle = prot_ns(rows, f"raw/{b}"), prot_ns(rows, f"call/{b}")
        if raw is None:
            print(f"  {b:15s} {prot_error(rows, f'raw/{b}')}")
            continue
        print(f"  {b:15s} {fmt(raw):>10s} {fmt(handle):>10s} {fmt(raw / handle if handle else None):>10s}"
              f" {us(raw - handle if handle else None):>11s}")

    print("Present pages: add1 on the SQLite/Lua image after touch_pages(N) wrote N pages of its array")
    print(f"  {'backend':15s} {'N':>5s} {'present':>8s} {'2M blks':>7s} {'ns/call':>10s} {'x N=1':>7s} {'ns/extra page':>13s}")
    for b in BACKENDS:
        first = prot_ns(rows, f"pages/{b}/N:1")
        first_row = prot_row(rows, f"pages/{b}/N:1")
        for n in [1, 10, 100, 1000]:
            name = f"pages/{b}/N:{n}"
            t = prot_ns(rows, name)
            if t is None:
                print(f"  {b:15s} {n:5d} {prot_error(rows, name)}")
                continue
            r = prot_row(rows, name)
            extra = r.get("present_pages", 0) - first_row.get("present_pages", 0) if first_row else 0
            per = (t - first) / extra if first and extra > 0 else None
            print(f"  {b:15s} {n:5d} {r.get('present_pages', 0):8.0f} {r.get('blocks_2m', 0):7.0f} {fmt(t):>10s}"
                  f" {fmt(t / first if first else None):>7s} {fmt(per):>13s}")

    print("Goals (SQLite/Lua image, add1 after warm-up)")
    mp, pk, no = (prot_ns(rows, f"sqlite_lua/add1/{b}") for b in ["mprotect", "pkey", "none"])
    d = prot_ns(rows, "sqlite_lua/add1/direct") or direct

    def verdict(ok):
        return "-" if ok is None else ("met" if ok else "MISSED")
    print(f"  mprotect <= 5 us:               {us(mp):>12s}   {verdict(mp <= 5e3 if mp else None)}")
    for label, pipe in [("any CPU", pipe_any), ("same CPU", pipe_same)]:
        r = pipe / mp if pipe and mp else None
        print(f"  mprotect >= 3x faster than pipe ({label}): pipe/mprotect = {fmt(r)}   {verdict(r >= 3 if r else None)}")
    print(f"  pkey <= 150 ns:                 {fmt(pk):>9s} ns   {verdict(pk <= 150 if pk else None)}")
    o = no - d if no and d else None
    print(f"  none <= 30 ns over direct:      {fmt(o):>9s} ns   {verdict(o <= 30 if o is not None else None)}")


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "."
    context = None
    for name, table in [("call", call_table), ("map", map_table), ("snapshot", snapshot_table),
                        ("warm", warm_table), ("protection", protection_table)]:
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
