#!/usr/bin/env python3
"""Instructions per function of one traced operation (bench_icount).

    BENCH_ICOUNT_TRACE=/tmp/t bench_icount --only none/handle
    bench/icount_profile.py /tmp/t

Reads the addresses bench_icount wrote and the child's memory map beside
them, and names each address's function with addr2line (file-backed
mappings; anything else is shown by its mapping)."""
import collections
import subprocess
import sys


def mappings(path):
    out = []
    for line in open(path):
        f = line.split()
        lo, hi = (int(x, 16) for x in f[0].split('-'))
        off = int(f[2], 16)
        name = f[5] if len(f) > 5 else '[anon]'
        out.append((lo, hi, off, name))
    return out


def main():
    trace = sys.argv[1]
    maps = mappings(trace + '.maps')
    addrs = [int(l, 16) for l in open(trace) if l.strip()]
    by_object = collections.defaultdict(list)
    for a in addrs:
        for lo, hi, off, name in maps:
            if lo <= a < hi:
                by_object[name].append((a, a - lo + off))
                break
        else:
            by_object['?'].append((a, a))
    counts = collections.Counter()
    for name, pairs in by_object.items():
        if not name.startswith('/'):
            for a, _ in pairs:
                counts[name] += 1
            continue
        uniq = sorted({off for _, off in pairs})
        res = subprocess.run(['addr2line', '-f', '-C', '-e', name] + [hex(o) for o in uniq],
                             capture_output=True, text=True).stdout.split('\n')
        if len(res) < 2 * len(uniq):  # not an ELF file addr2line reads (an image)
            res = [''] * (2 * len(uniq))
        fn = {o: res[2 * i] or '?' for i, o in enumerate(uniq)}
        for _, off in pairs:
            counts[f'{fn.get(off, "?")}  [{name.rsplit("/", 1)[-1]}]'] += 1
    print(f'{len(addrs)} instructions')
    for f, n in counts.most_common():
        print(f'{n:7d}  {f}')


if __name__ == '__main__':
    main()
