#!/usr/bin/env python3
"""Tests of bench/payload_chart.py (run by ctest as bench.payload_chart):
Google Benchmark JSON written here with known times, read back into the
README's table, the summary lines and the SVG."""
import json
import os
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import payload_chart  # noqa: E402


def row(name, real_time, unit="ms", **extra):
    return dict({"name": name, "run_name": name, "run_type": "iteration", "real_time": real_time,
                 "cpu_time": real_time, "time_unit": unit}, **extra)


def median(name, real_time, unit="ms", **extra):
    return dict(row(name, real_time, unit, **extra), run_type="aggregate", aggregate_name="median")


CONTEXT = {"date": "2026-12-05T22:00:00+00:00", "host_name": "vm", "num_cpus": 2, "mhz_per_cpu": 2096,
           "load_avg": [1.0, 1.5, 2.0], "payload": "demo", "payload_inputs": "7"}


class PayloadChartTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.write("payload_demo", [
            # Repeated: the median row is the one used, not the first iteration.
            row("cold/process/real_time", 999.0),
            median("cold/process/real_time", 100.0),
            row("cold/exec_only/real_time", 4.0),
            row("warm/process/real_time", 10.0),
            row("warm/in_process/auto/real_time", 2.0, label="mprotect", image_file_MB=30.0),
            row("warm/in_process/none/real_time", 1.0),
            row("steady/gate/auto/iterations:70/repeats:1/real_time", 2000.0, "us", label="mprotect",
                items_per_second=500.0),
            row("steady/gate/none/iterations:70/repeats:1/real_time", 1111.0, "us", items_per_second=900.0),
            row("steady/native/iterations:70/repeats:1/real_time", 1000.0, "us", items_per_second=1000.0,
                init_ms=90.0, mismatched_outputs=0),
        ])
        self.write("payload_broken", [
            dict(row("cold/process/real_time", 0.0), error_occurred=True,
                 error_message="the server's first operation failed"),
        ])
        self.write("payload_pss", [dict(row("pss/demo", 0.0), error_occurred=True, error_message="no holder")])

    def tearDown(self):
        self.dir.cleanup()

    def write(self, name, benchmarks):
        with open(os.path.join(self.dir.name, name + ".json"), "w") as f:
            json.dump({"context": CONTEXT, "benchmarks": benchmarks}, f)

    def test_table_has_the_ratios_of_numbers_from_the_same_run(self):
        table = payload_chart.markdown_table(payload_chart.load_payloads(self.dir.name)).splitlines()
        self.assertIn("gate ops/s (mprotect)", table[0])
        demo = next(line for line in table if line.startswith("| demo |"))
        cells = [c.strip() for c in demo.strip("|").split("|")]
        # cold, warm, ×, warm process, ×, native, gate, ÷, none, ÷
        self.assertEqual(cells[1:], ["100 ms", "2 ms", "×50", "10 ms", "×10", "1,000", "500", "0.50", "900", "0.90"])

    def test_a_failed_benchmark_is_shown_not_dropped(self):
        payloads = payload_chart.load_payloads(self.dir.name)
        self.assertEqual([p["name"] for p in payloads], ["broken", "demo"])
        broken = payloads[0]
        self.assertIsNone(broken["cold"])
        self.assertEqual(broken["errors"]["cold/process"], "the server's first operation failed")
        self.assertEqual(broken["errors"]["steady/native"], "missing")
        lines = payload_chart.report(self.dir.name)
        self.assertIn("    cold/process: the server's first operation failed", lines)
        self.assertIn("bench_payload_pss: no holder", lines)
        self.assertIn("\n| broken | - | - | - | - | - | - | - | - | - | - |\n", "\n".join(lines))

    def test_svg_is_well_formed_and_names_every_payload(self):
        payloads = payload_chart.load_payloads(self.dir.name)
        text = payload_chart.svg(payloads, None, payload_chart.subtitle_of(payloads))
        root = ET.fromstring(text)
        labels = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
        self.assertIn("demo", labels)
        self.assertIn("broken", labels)
        self.assertIn("2 ms  (×50 faster)", labels)
        self.assertTrue(any(label and label.startswith("2026-12-05T22:00:00+00:00") for label in labels))

    def test_no_results_is_said(self):
        with tempfile.TemporaryDirectory() as empty:
            self.assertEqual(payload_chart.report(empty), ["no payload_<name>.json results"])


if __name__ == "__main__":
    unittest.main()
