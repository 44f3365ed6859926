#!/usr/bin/env python3
"""Generates inputs.txt of the PCRE2 payload (this file is its source: edit
here, then run `python3 make_inputs.py` in this directory).

Every pattern of patterns.hpp gets several commands (match, count, split,
replace, replace1, first, info) on texts with and without matches, UTF-8
among them (Greek, accents, emoji); then errors: the catastrophic pattern
over the match limit, unknown patterns and commands, invalid UTF-8, bad
escapes, offsets and replacements.  The command language is described at
the top of payload.cpp.  Deterministic: no randomness, no clock.  Entries
are separated by lines "%%"; an entry of several lines runs several commands.
"""
import os

E = []


def esc(text):
    """A subject as the payload reads it: \\n \\t \\r \\\\ and \\xHH escapes."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def entry(*lines):
    for line in lines:
        assert "\n" not in line and line != "%%", line
    E.append("\n".join(lines))


def cmd(name, pattern, subject="", *, repl=None, offset=None):
    parts = [name, pattern]
    if repl is not None:
        assert " " not in repl, repl
        parts.append(repl)
    if offset is not None:
        parts.append(str(offset))
    return " ".join(parts) + " " + esc(subject)


# Each pattern: texts to search (the first one has matches; "" and a text
# without any match are added to some), its replacement (extended syntax),
# and a byte offset into the first text for "first".
PATTERNS = {
    "email": dict(
        texts=["Contact: john.doe@example.com, ana-maria@sub.mail.pt; bad@nodomain, x@y.io.",
               "Écrivez à élodie@exemple.fr ou à Σωκράτης: sokrates@athens.gr 😀",
               "no at-sign here, nor user@ nor @host.com"],
        repl="${user}\\x{20}[at]\\x{20}${domain}", offset=20),
    "date_iso": dict(
        texts=["Released 2024-02-29, patched 2024-13-01 (invalid), EOL 2030-12-31.",
               "Ημερομηνία: 1999-01-01 — fin: 2000-02-30T10:00",
               "20240229 is not 2024/02/29"],
        repl="${day}.${month}.${year}", offset=10),
    "date_us": dict(
        texts=["Meeting on 7/4/2024 and 12/31/1999; not 13/1/2020 nor 1/32/2020.",
               "Réunion le 01/02/2003 à Zürich",
               "nothing like a date"],
        repl="${year}-${month}-${day}", offset=12),
    "time": dict(
        texts=["Trains at 9:05, 23:59:30 and 24:00; 07:30:60 is odd.",
               "Ώρα 18:45 — départ à 6:07:08 🚆",
               "no clock: 9h05, 25:00"],
        repl="${h}h${m}${s:+m${s}s:}", offset=5),
    "ipv4": dict(
        texts=["hosts 192.168.1.1, 10.0.0.255, 256.1.1.1, 1.2.3 and 8.8.8.8",
               "διεύθυνση 127.0.0.1:8080 και 0.0.0.0",
               "999.999.999.999 is not an address"],
        repl="<ip:$0>", offset=8),
    "ipv6": dict(
        texts=["addr 2001:0db8:85a3:0000:0000:8a2e:0370:7334 and FE80:0:0:0:202:B3FF:FE1E:8329",
               "short ::1 does not count, nor 2001:db8::1",
               "fe80:0:0:0:0:0:0:1%eth0"],
        repl="\\L$0", offset=3),
    "url": dict(
        texts=["see https://example.com:8080/path/to?x=1&y=2#frag and http://test.org plus ftp://no.pe",
               "Ελληνικά: http://ελληνικά.gr/σελίδα?q=ναι — café https://café.fr/menu",
               "https:// alone, mailto:a@b.c"],
        repl="${scheme}://${host}${port:+\\:${port}:}${path:+${path}:/}", offset=10),
    "uuid": dict(
        texts=["id 123e4567-e89b-12d3-a456-426614174000, 123E4567-E89B-62D3-A456-426614174000, "
               "F47AC10B-58CC-4372-A567-0E02B2C3D479",
               "uuid: 00000000-0000-0000-0000-000000000000 (nil) and 6ba7b810-9dad-11d1-80b4-00c04fd430c8",
               "123e4567e89b12d3a456426614174000"],
        repl="\\U$0", offset=4),
    "hex_color": dict(
        texts=["#fff #FFAA00 #abcd #12345g color:#0f0; background: #C0FFEE",
               "χρώμα #ΑΒΓ και #a1b2c3",
               "no hash colors, # alone, #xyz"],
        repl="<$0>", offset=5),
    "phone": dict(
        texts=["Call +1 (555) 123-4567, 555.123.4567 or +351 912 345 6789.",
               "Τηλ: +30 210 123 4567 · fax 210-765-4321",
               "12-34 is too short"],
        repl="(${area})\\x{20}${num}", offset=10),
    "utf8_word": dict(
        texts=["Ça va? Καλημέρα κόσμε! naïve café — 日本語 😀 straße",
               "ÅÄÖ åäö Ñandú ĳ Ǆ",
               "123 456 !? 😀🎉 --"],
        repl="\\U$0", offset=3),
    "cap_word": dict(
        texts=["Alice met Ωmega and Élodie in Zürich; NASA and iPhone are not.",
               "Σωκράτης και Πλάτων, Ἀριστοτέλης",
               "all lower case, ALL UPPER"],
        repl="\\L$0", offset=6),
    "greek": dict(
        texts=["The word λόγος (logos) and Ἀθῆναι, mixed Αθήνα2024 and ω.",
               "Ελληνικά με τόνους: άέήίόύώ ΐΰ",
               "no greek, only latin and русский"],
        repl="[$0]", offset=9),
    "emoji": dict(
        texts=["I ❤️ regex 🎉🎉 and 👩‍💻 coding 🇵🇹 ©",
               "Καλό ταξίδι ✈️🌍 — bon voyage 🥐",
               "plain text :) <3"],
        repl=":emoji:", offset=2),
    "price": dict(
        texts=["$5, $12.50, $0.99 and 30 dollars, US$7.5",
               "Τιμή: $19.99 — prix: 20 €",
               "5$ and $ 10"],
        repl="€$0", offset=1),
    "not_negative": dict(
        texts=["3 -4 5.5 67 -0 8",
               "τιμές: 10, -20, 30.5, 40",
               "-1 -2 -3.5"],
        repl="<$0>", offset=2),
    "key_before_eq": dict(
        texts=["a = 1\nb=2\nlong_name   = 3\n= orphan\nkey==x",
               "όνομα = Ελένη\nnom=Zoë",
               "no equals sign here"],
        repl="\\U${key}", offset=6),
    "severity": dict(
        texts=["ERROR: disk full\nwarn: low memory\nWarning: retrying\nfatal error\nerrors: 0",
               "σφάλμα error! Fatal — avertissement Warn",
               "all good, information only"],
        repl="\\U$0", offset=7),
    "heading": dict(
        texts=["# Title\n## Sub title\n####### seven\nnot # heading\n###\n### Τίτλος 😀",
               "#Compact\ntext\n  # indented",
               "plain paragraph"],
        repl="==\\x{20}${title}\\x{20}==", offset=2),
    "repeated_word": dict(
        texts=["this is is a test test. The the end. Paris in the\nthe spring",
               "Καλό καλό ταξίδι — très très bien",
               "no repeats in this line at all"],
        repl="${word}", offset=6),
    "json_kv": dict(
        texts=['{"name": "Ana \\"Q\\"", "age": 42, "pi": 3.14, "ok": true, "none": null, "neg": -7}',
               '{"πόλη":"Αθήνα", "emoji": "😀", "list": [1, 2]}',
               '{name: "unquoted key", "bad": .5}'],
        repl="${key}=${value}", offset=10),
    "balanced": dict(
        texts=["f(a, (b + c) * (d - (e / f))) and (unclosed and ())",
               "λ(x, (y)) → (ζ)",
               "no parentheses ) here ("],
        repl="()", offset=2),
    "c_comment": dict(
        texts=["int x; /* one */ y = 2; /* multi\n line */ z; /* unclosed",
               "/* Σχόλιο 😀 */code/**/",
               "// a line comment, not a block"],
        repl="/**/", offset=8),
    "semver": dict(
        texts=["1.0.0 2.10.3-rc.1 3.0.0+build.42 1.2.3-beta+exp.sha.5114f85 v4.5.6",
               "έκδοση 0.9.12-άλφα, version 10.20.30",
               "1.2 and 1.x.3"],
        repl="v${major}.${minor}${pre:+-pre:}", offset=6),
    "html_tag": dict(
        texts=["<p>Hello <b>world</b></p><DIV class=x>Mixed</div><br><i>unclosed",
               "<span lang=el>Γειά σου 😀</span>\n<em>multi\nline</em>",
               "<a href=x>mismatched</b>"],
        repl="[${tag}:${body}]", offset=3),
    "catastrophic": dict(
        texts=["aaaaaaaaaa",
               "aaaaaaaaab",
               "bbbb"],
        repl="b", offset=0),
    "digits_opt": dict(
        texts=["a12bc3", "Αριθμός 42 και 7", "no digits"],
        repl="#", offset=1),
    "word_start": dict(
        texts=["Καλημέρα κόσμε, hi-there café", "  leading spaces", "!?. --"],
        repl="^", offset=0),
}

# ---------------------------------------------------------------- first: something cheap and typical
entry(cmd("match", "email", PATTERNS["email"]["texts"][0]))
entry("list")
entry("version")

# ---------------------------------------------------------------- every pattern
for name, p in PATTERNS.items():
    texts, repl = p["texts"], p["repl"]
    entry(f"info {name}")
    for t in texts:
        entry(cmd("match", name, t))
    entry(cmd("count", name, texts[0]))
    entry(cmd("count", name, texts[2]))
    entry(cmd("split", name, texts[0]))
    entry(cmd("replace", name, texts[0], repl=repl))
    entry(cmd("replace1", name, texts[1], repl=repl))
    entry(cmd("first", name, texts[0], offset=p["offset"]))
    entry(cmd("match", name, ""))

# ---------------------------------------------------------------- several commands in one entry
entry(cmd("count", "email", PATTERNS["email"]["texts"][0]),
      cmd("count", "date_iso", PATTERNS["date_iso"]["texts"][0]),
      cmd("count", "ipv4", PATTERNS["ipv4"]["texts"][0]),
      "info time")
entry(cmd("match", "nope", "x"),
      cmd("count", "greek", "still runs: Ωμέγα"))

# A log of 60 lines: many matches of a few patterns in one subject.
log = "\n".join(
    f"2024-03-{1 + i % 28:02d} {i % 24:02d}:{i * 7 % 60:02d}:{i * 13 % 60:02d} "
    f"{['INFO', 'WARN', 'ERROR', 'DEBUG', 'Fatal'][i % 5]} host 10.0.{i % 256}.{i * 3 % 256} "
    f"user{i}@example.com took ${i % 100}.{i % 7}0"
    for i in range(60))
for name in ["severity", "date_iso", "time", "ipv4", "email", "price"]:
    entry(cmd("count", name, log))
entry(cmd("replace", "severity", log[:400], repl="\\L$0"))

# Nested parentheses: recursion deep enough to matter, still well under the limits.
for depth in [1, 10, 60]:
    entry(cmd("match", "balanced", "x" + "(" * depth + "core" + ")" * depth + ")"))
entry(cmd("count", "balanced", "(" * 40 + "unbalanced"))

# ---------------------------------------------------------------- the match limit
for n in [5, 12, 24, 30, 40]:
    entry(cmd("count", "catastrophic", "a" * n + "!"))
entry(cmd("match", "catastrophic", "a" * 40))
entry(cmd("first", "catastrophic", "a" * 32 + "b", offset=0))
entry(cmd("split", "catastrophic", "a" * 32 + "b"))
entry(cmd("replace", "catastrophic", "a" * 32 + "b", repl="x"))
entry(cmd("count", "catastrophic", "a" * 32 + "b"),
      cmd("count", "catastrophic", "aaa"))

# ---------------------------------------------------------------- empty matches and UTF stepping
entry(cmd("split", "digits_opt", "1a22b333"))
entry(cmd("replace", "digits_opt", "x1y", repl="[$0]"))
entry(cmd("match", "word_start", "ἀρχή ἦν ὁ λόγος"))
entry(cmd("replace", "word_start", "😀 emoji, Ωmega et été", repl="|"))
entry(cmd("count", "word_start", "日本語 テキスト and ελληνικά"))
entry(cmd("match", "utf8_word", "e\u0301 (e + combining acute) vs é"))

# ---------------------------------------------------------------- escapes in subjects
entry("match time tab\\there 10:30\\r\\n11:45")
entry("match utf8_word nul\\x00byte \\x41BC")
entry("split severity a\\\\error\\\\b")
entry("count digits_opt \\x31\\x32\\x33")
entry("match heading # one\\n# two\\r\\n# three")

# ---------------------------------------------------------------- errors
entry("match nope some text")
entry("count NotAPattern x")
entry("info unknown_pattern")
entry("frobnicate email x")
entry("match")
entry("replace email")
entry("first email")
entry("first email abc x@y.io")
entry("first email 99 x@y.io")
entry("first email -1 x@y.io")
entry("first utf8_word 1 é")
entry("match utf8_word caf\\xc3 au lait")
entry("count greek \\xce\\xbb\\xff")
entry("match email trailing backslash \\")
entry("match email bad escape \\q")
entry("match email short hex \\x4")
entry("replace email ${nope} a@b.io")
entry("replace email $9 a@b.io")
entry("replace email ${1 a@b.io")
entry("replace email \\ca a@b.io")
entry("replace time $s 10:20")
entry("replace time ${s:-00} 10:20")
entry("replace1 date_iso ${year 2024-01-02")
entry("replace email ok no addresses here")

out = "\n%%\n".join(E) + "\n"
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "inputs.txt"), "w", encoding="utf-8") as f:
    f.write(out)
print(f"{len(E)} entries")
