#!/usr/bin/env python3
"""Checks that signal-context code calls only signal-context code.

Usage: check_signal_context.py ALLOWLIST OBJECT...

Functions marked SUBCTX_SIGNAL_CONTEXT (src/fault/signal_context.h) live in
the section .text.subctx_signal.  Every relocation from that section, in
every object given, must point at
  - code in .text.subctx_signal or .text.subctx_allowed (of any object),
  - data that is not thread-local (.rodata, .data, .bss and their kin), or
  - a symbol listed in ALLOWLIST (assembly entry points whose address the
    handlers take or compare).
Anything else -- memcpy, a libc function, operator new, __tls_get_addr,
__stack_chk_fail, a sanitizer hook, normal code of the library -- is
reported with the function that references it, and the check fails.
"""
import re
import subprocess
import sys

SIGNAL_SECTIONS = (".text.subctx_signal", ".text.subctx_allowed")
DATA_PREFIXES = (".rodata", ".data", ".bss", ".lrodata", ".ldata", ".lbss")
TLS_RELOCATIONS = ("TPOFF", "TLSGD", "TLSLD", "DTPOFF", "GOTTPOFF")


def run(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def symbols(obj):
    """(name, section, value, size, is_function) for each symbol of obj."""
    out = []
    for line in run("objdump", "-t", "-w", obj).splitlines():
        m = re.match(r"^([0-9a-f]{16}) (.{7}) (\S+)\s+([0-9a-f]{16})\s+(?:\.hidden\s+)?(\S+)$", line)
        if m:
            out.append((m.group(5), m.group(3), int(m.group(1), 16), int(m.group(4), 16), "F" in m.group(2)))
    return out


def relocations(obj):
    """(offset, type, target) of each relocation from .text.subctx_signal."""
    out, inside = [], False
    for line in run("readelf", "-rW", obj).splitlines():
        if line.startswith("Relocation section"):
            inside = "'.rela.text.subctx_signal'" in line
            continue
        if not inside:
            continue
        m = re.match(r"^([0-9a-f]{16})\s+[0-9a-f]{16}\s+(\S+)\s+[0-9a-f]{16}\s+(\S+)", line)
        if m:
            out.append((int(m.group(1), 16), m.group(2), m.group(3)))
    return out


def main():
    allowlist_path = sys.argv[1]
    # CMake hands $<TARGET_OBJECTS:...> over as one ;-separated argument.
    objects = [o for arg in sys.argv[2:] for o in arg.split(";") if o]
    allowed = set()
    for line in open(allowlist_path):
        line = line.split("#", 1)[0].strip()
        if line:
            allowed.add(line)
    defined = {}  # name -> section, over every object
    per_object = {}
    for obj in objects:
        syms = symbols(obj)
        per_object[obj] = syms
        for name, section, _, _, _ in syms:
            if section not in ("*UND*", "*ABS*") and not name.startswith("."):
                defined.setdefault(name, section)
    problems, checked = [], 0
    for obj in objects:
        local = {name: sec for name, sec, _, _, _ in per_object[obj] if name.startswith(".L")}
        funcs = sorted((v, v + size, name) for name, sec, v, size, is_fn in per_object[obj]
                       if sec == ".text.subctx_signal" and is_fn)

        def where(offset):
            for lo, hi, name in funcs:
                if lo <= offset < hi:
                    return name
            return "offset 0x%x" % offset

        for offset, rtype, target in relocations(obj):
            checked += 1
            if any(t in rtype for t in TLS_RELOCATIONS):
                problems.append((obj, where(offset), target, "thread-local storage (%s)" % rtype))
                continue
            if target.startswith(".L"):  # a compiler's local label: string constants, jump tables
                section = local.get(target, ".rodata")
            else:
                section = target if target.startswith(".") else defined.get(target, "*UND*")
            if target in allowed or section in SIGNAL_SECTIONS or section.startswith(DATA_PREFIXES):
                continue
            if section == "*UND*":
                why = "defined outside the library's objects (libc, the C++ runtime, a sanitizer)"
            else:
                why = "normal code (section %s)" % section
            problems.append((obj, where(offset), target, why))
    for obj, fn, target, why in problems:
        demangled = run("c++filt", fn).strip()
        print("%s: %s references %s: %s" % (obj.rsplit("/", 1)[-1], demangled, target, why))
    if problems:
        print("\nsignal-context code (SUBCTX_SIGNAL_CONTEXT) may call only other signal-context code: "
              "mark the callee SUBCTX_SIGNAL_CONTEXT (or SUBCTX_SIGNAL_INLINE in a header), replace a libc "
              "call (memcpy: copy_bytes or __builtin_memcpy of a constant size; system calls: "
              "subctx_allowed_syscall), or, for an assembly entry point, list it in %s" % allowlist_path)
        return 1
    if checked == 0:
        print("no relocation from .text.subctx_signal in %d objects: is SUBCTX_SIGNAL_CONTEXT applied?" %
              len(objects))
        return 1
    print("%d relocations from signal-context code in %d objects: all to signal-context code, data or the "
          "allowlist" % (checked, len(objects)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
