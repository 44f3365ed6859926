#!/usr/bin/env python3
"""Prints the table of ratios from the JSON files bench/run.sh wrote.

usage: summarize.py RESULTS_DIR   (call.json, map.json, snapshot.json, external_snapshot.json, thread.json, warm.json,
                                   protection.json, containment.json, identity.json, start.json, payload_<name>.json,
                                   payload_pss.json)

Every ratio divides two numbers measured in the same run of the same binary.
Where a benchmark was repeated, the median repetition is used.
"""
import json
import os
import sys

import payload_chart  # bench/payload_chart.py: the payload section and its table


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
    print("Call overhead: add1(x), result feeds the next call; floor = stack + thread pointer switched and back"
          " (+ WRPKRU pair for pkey), timed in the same run; instructions single-stepped (exact)")
    direct = rows.get("direct")
    if not direct or "error" in direct:
        print("  (no direct-call baseline)")
        return
    print(f"  {'row':22s} {'ns':>8s} {'floor ns':>9s} {'x floor':>8s} {'instr':>7s} {'floor instr':>12s}")
    print(f"  {'direct':22s} {time_in(direct, 'ns'):8.1f}")
    for floor in ("floor/none", "floor/pkey"):
        row = rows.get(floor)
        if row and "error" not in row:
            print(f"  {floor:22s} {time_in(row, 'ns'):8.1f}   {row.get('label', '')}")
    for backend in ("none", "pkey", "mprotect"):
        for way in ("handle", "by_name", "c_api"):
            key = f"gate/{backend}/{way}"
            row = rows.get(key)
            if not row or "error" in row:
                print(f"  {key:22s} {row['error'][:100] if row else 'missing'}")
                continue
            print(f"  {key:22s} {time_in(row, 'ns'):8.1f} {row['floor_ns']:9.1f} {row['x_floor']:8.2f}"
                  f" {row['instructions']:7.0f} {row['floor_instructions']:12.0f}")


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
    m, r = rows.get("map/heap_mb:1"), rows.get("raw_mmap/heap_mb:1")
    if m and r and "syscalls_map" in m and "syscalls" in r:
        print(f"  system calls, 1 MB image: map {m['syscalls_map']:.0f} + unmap {m['syscalls_unmap']:.0f};"
              f" plain mmap + munmap {r['syscalls']:.0f}")
    phases = ["open", "read", "decide", "prepare", "segments", "vdso", "prefetch", "state", "containment",
              "identity", "protection", "publish", "unmap_layout", "unmap_memory", "unmap_rest", "unmap_other"]
    print("  Phases of map + unmap, 1 MB image, us per iteration (phases/ rows; the clock adds a little):")
    print("  " + f"{'backend':9s}" + "".join(f" {p[:9]:>9s}" for p in phases))
    for backend in ("auto", "none", "mprotect"):
        row = rows.get(f"phases/heap_mb:1/{backend}")
        if not row or "error" in row:
            continue
        print("  " + f"{backend:9s}" + "".join(f" {row.get(p, 0):9.1f}" for p in phases))


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


def external_snapshot_table(rows):
    print("External snapshot (subctx snapshot --pid) of a heap, half zero pages, vs the in-process snapshot of the same"
          " heap and process_vm_readv of the same ranges (docs/external-snapshot.md)")
    print(f"  {'zero pages':12s} {'heap MB':>8s} {'ext MB/s':>9s} {'inproc MB/s':>11s} {'ext/inproc':>10s}"
          f" {'readv MB/s':>10s} {'ext file MB':>11s} {'ext disk MB':>11s}")
    for mode in ["untouched", "touched"]:
        row = find(rows, f"external_snapshot/{mode}")
        if not row or "error" in row:
            print(f"  {mode:12s} {row['error'] if row else 'missing'}")
            continue
        print(f"  {mode:12s} {row['heap_MB']:8.0f} {row['ext_MB_per_s']:9.0f} {row['inproc_MB_per_s']:11.0f}"
              f" {row['ext_vs_inproc']:10.2f} {row['readv_MB_per_s']:10.0f} {row['ext_file_MB']:11.0f}"
              f" {row['ext_disk_MB']:11.0f}")


def thread_table(rows):
    print("Threads of subcontext code vs the same code natively, same run (docs/threads.md)")
    print(f"  {'backend':8s} {'create+join ns':>14s} {'native ns':>10s} {'x native':>8s}"
          f" {'pool call us':>12s} {'native us':>10s} {'x native':>8s}")
    for backend in ["none", "pkey"]:
        create, pool = find(rows, f"BM_thread_create/{backend}"), find(rows, f"BM_pool_call/{backend}")
        if not create or not pool or "error" in create or "error" in pool:
            reason = (create or pool or {}).get("error", "missing")
            print(f"  {backend:8s} {reason}")
            continue
        print(f"  {backend:8s} {create['sub_ns']:14.0f} {create['native_ns']:10.0f} {create['x_native']:8.2f}"
              f" {pool['sub_us']:12.1f} {pool['native_us']:10.1f} {pool['x_native']:8.2f}")


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

    print("Batches: Function::call_each, N calls per protection window; ns per call (batch time / N)")
    print(f"  {'what':24s} {'N':>5s} " + " ".join(f"{b:>16s}" for b in BACKENDS))
    batch_rows = [("small image, add1", "batch/add1", n) for n in [16, 256, 4096]]
    batch_rows += [("SQLite/Lua, add1", "batch/sqlite_lua_add1", 256), ("SQLite/Lua, lookup", "batch/sqlite_lua_lookup", 256)]
    for label, prefix, n in batch_rows:
        cells = []
        for b in BACKENDS:
            t = prot_ns(rows, f"{prefix}/{b}/calls:{n}")
            single = prot_ns(rows, f"sqlite_lua/{'lookup' if 'lookup' in prefix else 'add1'}/{b}"
                             if "sqlite" in prefix else f"call/{b}")
            cells.append("-" if t is None else f"{fmt(t / n)} (x{fmt(single / (t / n)) if single else '-'})")
        print(f"  {label:24s} {n:5d} " + " ".join(f"{c:>16s}" for c in cells))
    print("  (x = the single call's time / the batched call's: how many times faster)")

    d = prot_ns(rows, "sqlite_lua/add1/direct") or direct

    def verdict(ok):
        return "-" if ok is None else ("met" if ok else "MISSED")

    def goal_lines(mp, pk, no):
        print(f"  mprotect <= 5 us:               {us(mp):>12s}   {verdict(mp <= 5e3 if mp else None)}")
        for label, pipe in [("any CPU", pipe_any), ("same CPU", pipe_same)]:
            r = pipe / mp if pipe and mp else None
            print(f"  mprotect >= 3x faster than pipe ({label}): pipe/mprotect = {fmt(r)}   {verdict(r >= 3 if r else None)}")
        print(f"  pkey <= 150 ns:                 {fmt(pk):>9s} ns   {verdict(pk <= 150 if pk else None)}")
        o = no - d if no and d else None
        print(f"  none <= 30 ns over direct:      {fmt(o):>9s} ns   {verdict(o <= 30 if o is not None else None)}")

    print("Goals (SQLite/Lua image, add1 after warm-up)")
    goal_lines(*(prot_ns(rows, f"sqlite_lua/add1/{b}") for b in ["mprotect", "pkey", "none"]))
    print("  ... per call in a batch of 256 (call_each; SQLite/Lua image, add1):")
    batched = (prot_ns(rows, f"batch/sqlite_lua_add1/{b}/calls:256") for b in ["mprotect", "pkey", "none"])
    goal_lines(*(None if t is None else t / 256 for t in batched))


# Google Benchmark appends these to a name: UseRealTime, UseManualTime,
# Iterations(1) + UseManualTime (the dispatch_off rows).
SUFFIXES = ["/real_time", "/manual_time", "/iterations:1/manual_time", ""]


def cont_row(rows, name):
    for suffix in SUFFIXES:
        row = rows.get(name + suffix)
        if row is not None:
            return row
    return None


def cont_ns(rows, name):
    row = cont_row(rows, name)
    return time_in(row, "ns") if row and "error" not in row else None


def cont_err(rows, name):
    row = cont_row(rows, name)
    return "missing" if row is None else row.get("error")


def ratio(a, b):
    return a / b if a is not None and b else None


def containment_table(rows):
    print("Containment (docs/containment.md); Protection::None unless the row says mprotect")

    call = cont_ns(rows, "call/none")
    direct = cont_ns(rows, "call/direct")
    print("Fault -> SubcontextFault at the call site (us per faulting call); x call = / add1 through the gate")
    print(f"  baseline: add1 direct {fmt(direct)} ns, through the gate {fmt(call)} ns"
          f" (mprotect {us(cont_ns(rows, 'call/mprotect'))})")
    print(f"  {'fault':28s} {'us':>9s} {'x call':>8s} {'frames':>6s} {'dispatch off us':>15s}  first frame")
    for name, label in [("fault/segv_keep/none", "SIGSEGV (null), Keep"),
                        ("fault/segv_reset/none", "SIGSEGV (null), Reset"),
                        ("fault/fpe_keep/none", "SIGFPE (x / 0), Keep"),
                        ("fault/abort_keep/none", "SIGABRT (abort()), Keep"),
                        ("fault/segv_keep/mprotect", "SIGSEGV, Keep, mprotect"),
                        ("fault/segv_reset/mprotect", "SIGSEGV, Reset, mprotect")]:
        t = cont_ns(rows, name)
        if t is None:
            print(f"  {label:28s} {cont_err(rows, name)}")
            continue
        r = cont_row(rows, name)
        base = cont_ns(rows, "call/mprotect") if name.endswith("mprotect") else call
        off = cont_ns(rows, "dispatch_off/" + name)
        print(f"  {label:28s} {t / 1e3:9.2f} {fmt(ratio(t, base)):>8s} {r.get('frames', 0):6.0f}"
              f" {(f'{off / 1e3:.2f}' if off else '-'):>15s}  {r.get('label', '')}")
    keep, reset_ = cont_ns(rows, "fault/segv_keep/none"), cont_ns(rows, "fault/segv_reset/none")
    if keep and reset_:
        print(f"  automatic reset after a fault adds {us(reset_ - keep)}")

    print("Reset after dirty(N): reset() alone (manual timing); floor = MADV_DONTNEED of N written pages"
          " of a plain anonymous mapping")
    print(f"  {'N':>6s} {'restored':>8s} {'dirty(N) us':>11s} {'reset us':>9s} {'floor us':>9s} {'x floor':>8s}"
          f" {'reset-floor':>11s} {'ns/page':>8s}")
    clean = cont_ns(rows, "reset/dirty/none/pages:0")
    for n in [0, 1, 100, 10000]:
        name = f"reset/dirty/none/pages:{n}"
        t = cont_ns(rows, name)
        if t is None:
            print(f"  {n:6d} {cont_err(rows, name)}")
            continue
        r = cont_row(rows, name)
        f = cont_ns(rows, f"floor/madvise/pages:{n}") if n else None
        per = (t - clean) / n if n and clean is not None else None
        print(f"  {n:6d} {r.get('pages_restored', 0):8.0f} {r.get('dirty_ns', 0) / 1e3:11.2f} {t / 1e3:9.2f}"
              f" {(f'{f / 1e3:.2f}' if f else '-'):>9s} {fmt(ratio(t, f)):>8s}"
              f" {(us(t - f) if f else '-'):>11s} {fmt(per):>8s}")
    t = cont_ns(rows, "reset/dirty/mprotect/pages:100")
    if t is not None:
        f = cont_ns(rows, "floor/madvise/pages:100")
        print(f"  {'100':>6s} mprotect backend: reset {us(t)}, x floor {fmt(ratio(t, f))}")
    scan, scans = cont_ns(rows, "floor/pagemap_scan/call"), cont_row(rows, "floor/pagemap_scan/image")
    for name in ("reset/dirty/none/pages:0", "reset/dirty/mprotect/pages:0"):
        t, r = cont_ns(rows, name), cont_row(rows, name)
        if t is None or scan is None:
            continue
        per_run = (f"; one per run of adjacent segments ({scans.get('scans', 0):.0f}):"
                   f" {us(cont_ns(rows, 'floor/pagemap_scan/image'))}" if scans and "error" not in scans else "")
        print(f"  clean reset, {name.split('/')[2]}: {us(t)} ({r.get('label', '')}); one PAGEMAP_SCAN call"
              f" {us(scan)} (x{fmt(ratio(t, scan))}){per_run}")
    r0 = cont_row(rows, "reset/dirty/none/pages:0")
    if r0 and "error" not in r0:
        print(f"  (ns/page: (reset - clean reset) / N; the image has {r0.get('segments', 0):.0f} segments,"
              f" {r0.get('image_MB', 0):.0f} MB)")

    print("Reset by image size (heap data of FILL MiB in the image; 0 = the plain image):"
          " clean, 100 dirtied pages, clean with all the data present")
    print(f"  {'fill MiB':>8s} {'image MB':>8s} {'segs':>5s} {'clean us':>9s} {'x 0 MiB':>8s}"
          f" {'dirty:100 us':>12s} {'x floor':>8s} {'present':>8s} {'present clean us':>16s}")
    f100 = cont_ns(rows, "floor/madvise/pages:100")
    c0 = cont_ns(rows, "reset/image/fill_mb:0/dirty:0") or clean
    for fill in [0, 8, 64, 256]:
        cn = f"reset/image/fill_mb:{fill}/dirty:0" if fill else "reset/dirty/none/pages:0"
        dn = f"reset/image/fill_mb:{fill}/dirty:100" if fill else "reset/dirty/none/pages:100"
        c, d = cont_ns(rows, cn), cont_ns(rows, dn)
        if c is None:
            print(f"  {fill:8d} {cont_err(rows, cn)}")
            continue
        r = cont_row(rows, cn)
        p = cont_ns(rows, f"reset/image_present/fill_mb:{fill}") if fill else None
        pr = cont_row(rows, f"reset/image_present/fill_mb:{fill}") if fill else None
        present = f"{pr['present_pages']:.0f}" if p is not None and "present_pages" in pr else "-"
        print(f"  {fill:8d} {r.get('image_MB', 0):8.0f} {r.get('segments', 0):5.0f} {c / 1e3:9.2f}"
              f" {fmt(ratio(c, c0)):>8s} {(f'{d / 1e3:.2f}' if d else '-'):>12s} {fmt(ratio(d, f100)):>8s}"
              f" {present:>8s}"
              f" {(f'{p / 1e3:.2f}' if p else '-'):>16s}")

    print("System calls: getppid, ns per system call (loops of 100)")

    def per_call(name):
        t, r = cont_ns(rows, name), cont_row(rows, name)
        return t / r.get("syscalls", 100) if t is not None else None
    exp, fresh, called = (per_call("syscall/export_getppid"), per_call("syscall/client_getppid/fresh_thread"),
                          per_call("syscall/client_getppid/called_thread"))
    exp_off, called_off = per_call("dispatch_off/syscall/export_getppid"), \
        per_call("dispatch_off/syscall/client_getppid/called_thread")
    print(f"  {'':52s} {'ns/syscall':>10s} {'x client':>9s}")
    for label, t in [("export, mediated (SIGSYS round trip)", exp),
                     ("client, fresh thread (dispatch off)", fresh),
                     ("client, thread that called a subcontext (dispatch on)", called),
                     ("SUBCTX_SYSCALLS=off: export (direct)", exp_off),
                     ("SUBCTX_SYSCALLS=off: client, thread that called", called_off)]:
        base = called_off if label.startswith("SUBCTX") else fresh
        print(f"  {label:52s} {fmt(t):>10s} {fmt(ratio(t, base)):>9s}")
    if exp and fresh:
        print(f"  mediation adds {fmt(exp - fresh)} ns per system call of subcontext code")
    if called and fresh:
        print(f"  dispatch on costs the client's own system calls {fmt(called - fresh)} ns each")

    print("Call overhead with and without Syscall User Dispatch: add1 through the gate, ns/call")
    on, off = call, cont_ns(rows, "dispatch_off/call/none")
    d_on, d_off = direct, cont_ns(rows, "dispatch_off/call/direct")
    print(f"  dispatch on (this process): {fmt(on)} ns (direct {fmt(d_on)});"
          f" SUBCTX_SYSCALLS=off (child): {fmt(off)} ns (direct {fmt(d_off)});"
          f" on/off x{fmt(ratio(on, off))}, {fmt(on - off if on and off else None)} ns")


def identity_table(rows):
    print("Identity (docs/identity.md): the subcontext's own descriptor namespace; Protection::None")

    def per_call(name):
        t, r = cont_ns(rows, name), cont_row(rows, name)
        return t / r.get("syscalls", 100) if t is not None else None

    def extra(call):  # what mediation adds to one system call: export - client
        e, c = per_call(f"syscall/export_{call}"), per_call(f"syscall/client_{call}")
        return (e, c, e - c) if e is not None and c is not None else (e, c, None)

    def pct(part, whole):
        return "-" if part is None or not whole else f"{100 * part / whole:.1f}%"
    print("System calls, ns per system call (loops of 100): export = mediated (a SIGSYS round trip each);"
          " client = the same loop in")
    print("  this client on its own descriptor of the same file, on a thread that never called (native)")
    print(f"  {'system call':36s} {'export ns':>10s} {'client ns':>10s} {'mediation ns':>12s}"
          f" {'baseline':>9s} {'translation':>11s} {'%':>7s}")
    gp, gg = extra("getppid")[2], extra("getpgrp")[2]
    # The handler makes fstat (glibc: newfstatat with AT_EMPTY_PATH) like
    # getppid, with signals blocked; pread like getpgrp, with the interrupted
    # signal mask set around it (it may block): each is compared with the
    # system call without a descriptor that takes the same path.
    baseline = {"fstat": ("getppid", gp), "pread": ("getpgrp", gg)}
    goal = []
    for call, label in [("getppid", "getppid() (no descriptor)"),
                        ("getpgrp", "getpgrp() (no descriptor, may block)"),
                        ("fstat", "fstat(fd), restored descriptor"), ("pread", "pread(fd, 1 byte), restored")]:
        e, c, x = extra(call)
        if x is None:
            name = f"syscall/export_{call}" if e is None else f"syscall/client_{call}"
            print(f"  {label:36s} {cont_err(rows, name)}")
            continue
        base_name, base = baseline.get(call, ("-", None))
        t = x - base if base is not None else None
        if t is not None:
            goal.append((call, base_name, t, base))
        print(f"  {label:36s} {fmt(e):>10s} {fmt(c):>10s} {fmt(x):>12s} {base_name:>9s} {fmt(t):>11s}"
              f" {pct(t, base):>7s}")
    print("  mediation = export - client; translation = mediation - the baseline's mediation (the same path through")
    print("  the handler without a descriptor); % = of the baseline's mediation")
    for call, base_name, t, base in goal:
        print(f"  goal, {call}'s translation <= 10% of {base_name}'s mediation ({fmt(base)} ns): {fmt(t)} ns ="
              f" {pct(t, base)}   {'met' if t <= 0.1 * base else 'MISSED'}")

    print("Map with restored descriptors: request_map + unmap of an image whose server had N files open;"
          " floor = open() + close()")
    print("  of the same N files in this client")
    print(f"  {'N':>5s} {'restored':>8s} {'map us':>9s} {'- N=0 us':>9s} {'ns/fd':>8s} {'floor us':>9s}"
          f" {'floor ns/fd':>11s} {'x floor':>8s}")
    t0 = cont_ns(rows, "map/fds:0")
    for n in [0, 16, 128]:
        name = f"map/fds:{n}"
        t = cont_ns(rows, name)
        if t is None:
            print(f"  {n:5d} {cont_err(rows, name)}")
            continue
        r = cont_row(rows, name)
        f = cont_ns(rows, f"floor/open_close/fds:{n}") if n else None
        per = (t - t0) / n if n and t0 is not None else None
        f_per = f / n if f is not None else None
        over = f"{(t - t0) / 1e3:.1f}" if n and t0 is not None else "-"
        print(f"  {n:5d} {r.get('restored_fds', 0):8.0f} {t / 1e3:9.1f} {over:>9s}"
              f" {fmt(per):>8s} {(f'{f / 1e3:.1f}' if f else '-'):>9s} {fmt(f_per):>11s} {fmt(ratio(per, f_per)):>8s}")
    print("  ns/fd = (map(N) - map(0)) / N: the map's cost per restored descriptor; x floor = ns/fd / floor ns/fd")


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "."
    context = None
    for name, table in [("call", call_table), ("map", map_table), ("snapshot", snapshot_table),
                        ("external_snapshot", external_snapshot_table), ("thread", thread_table),
                        ("warm", warm_table),
                        ("protection", protection_table), ("containment", containment_table),
                        ("identity", identity_table), ("start", start_table)]:
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
    icount_table(directory)
    payloads_section(directory)
    ctx, rows = load(directory, "pcre2_batch")
    if ctx is not None:
        print()
        pcre2_batch_table(rows)


def start_table(rows):
    """bench_start: a new process, linked with libsubctx_client or a client of an image."""
    print("Process start (posix_spawn + wait, 300 starts; base = a C hello world with nothing else linked,"
          " started in the same iterations)")
    for key, label in [("start/hello/", "C hello world (the base)"),
                       ("start/hello_stdcxx/", "the same linked with libstdc++ only"),
                       ("start/hello_linked/", "the same linked with libsubctx_client, unused"),
                       ("start/client_map_call/", "C client: map a 1 MB image, one call, exit")]:
        row = find(rows, key)
        if not row or "error" in row:
            print(f"  {label:48s} {row['error'] if row else 'missing'}")
            continue
        line = f"  {label:48s} {time_in(row, 'ms'):7.3f} ms"
        if "added_ms" in row:
            line += f"   base {row['base_ms']:.3f} ms, +{row['added_ms']:.3f} ms (x{row['ratio']:.2f})"
        print(line)


def icount_table(directory):
    """bench_icount: instructions and system calls of one operation, single-stepped."""
    path = os.path.join(directory, "icount.json")
    if not os.path.exists(path):
        print("icount: no results")
        return
    with open(path) as f:
        data = json.load(f)
    print(f"Instructions of one operation (bench_icount; exact; machine: {data['machine']})")
    print(f"  {'backend':9s} {'operation':40s} {'instr':>7s} {'syscalls':>8s}  system calls")
    for r in data["rows"]:
        if r["error"]:
            print(f"  {r['backend']:9s} {r['operation']:40s} {r['error'][:90]}")
        else:
            print(f"  {r['backend']:9s} {r['operation']:40s} {r['instructions']:7d} {r['syscalls']:8d}  {r['system_calls']}")
    print()


def pcre2_batch_table(rows):
    """bench_pcre2_batch: count_matches over every pattern and input, per job."""
    def per_job(name):
        row = prot_row(rows, name)
        if not row or "error" in row:
            return None, (row or {}).get("error", "missing")
        return row.get("ns_per_job"), row
    native, nrow = per_job("native")
    jobs = nrow.get("jobs", 0) if isinstance(nrow, dict) else 0
    print(f"Batches on PCRE2: count_matches over {jobs:.0f} (pattern, subject) jobs, ns per job;"
          " x = / native PCRE2 in this process")
    if native is None:
        print(f"  native: {nrow}")
        return
    print(f"  native {fmt(native)} ns/job; gate mismatches {nrow.get('gate_mismatches', 0):.0f}")
    for b in ["auto", "none"]:
        single, srow = per_job(f"gate/{b}")
        batch, brow = per_job(f"batch/{b}")
        label = srow.get("label", b) if isinstance(srow, dict) else b
        cells = [f"{fmt(t)} (x{fmt(t / native)})" if t else str(r) for t, r in [(single, srow), (batch, brow)]]
        print(f"  {b} ({label}): one call per job {cells[0]}, call_each {cells[1]}")


def payloads_section(directory):
    print("Payloads (issue 5): first operation in a new process (cold: init + 1st op; exec only: the same"
          " program, no init)")
    print("  vs a client of the snapshot image (warm proc: a new payload_client process; warm: map + 1st op +"
          " unmap in a running")
    print("  client; none: no protection); steady ops/s over all inputs, native in process vs through the gate;"
          " mism = outputs")
    print("  of the first pass that differ between gate and native (0 expected)")
    for line in payload_chart.report(directory):
        print(line)


if __name__ == "__main__":
    main()
