#!/usr/bin/env python3
"""bench-selfcheck: lss-bench's verification must catch a wrong answer.

1. `lss-bench --self-check` runs cases in one process: each check value is
   stable across runs, equals its plain SQLite baseline's, and changes when
   the library side reads back one flipped position.
2. Across processes: two runs of the same cases give the same checks, and
   LSS_BENCH_BREAK=1 (the same flip) changes them.
3. `lss-bench compare` reads both result files and exits 0.
"""
import json
import os
import subprocess
import sys
import tempfile

SIZE = "2"
CASES = ["201", "210", "220", "301", "311", "400"]


def run(exe, args, env=None):
    p = subprocess.run([exe] + args, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=240)
    print("$ lss-bench " + " ".join(args))
    print(p.stdout)
    return p


def checks(path):
    with open(path) as f:
        doc = json.load(f)
    return {c["num"]: c["check"] for c in doc["cases"] if "check" in c}


def main():
    exe = sys.argv[1]
    failures = []
    p = run(exe, ["--self-check", "--size", SIZE])
    if p.returncode != 0 or "self-check: passed" not in p.stdout:
        failures.append("--self-check failed")

    env = dict(os.environ)
    env.pop("LSS_BENCH_BREAK", None)
    broken = dict(env, LSS_BENCH_BREAK="1")
    with tempfile.TemporaryDirectory() as tmp:
        files = [os.path.join(tmp, n) for n in ("a.json", "b.json", "c.json")]
        common = CASES + ["--size", SIZE, "--runs", "1", "--json"]
        for path, e in zip(files, (env, env, broken)):
            if run(exe, common + [path], e).returncode != 0:
                failures.append("run for %s failed" % os.path.basename(path))
        if not failures:
            a, b, c = (checks(f) for f in files)
            for num in CASES:
                n = int(num)
                if a.get(n) is None or a.get(n) != b.get(n):
                    failures.append("case %s: check not deterministic across "
                                    "processes (%s vs %s)" % (num, a.get(n), b.get(n)))
                if a.get(n) == c.get(n):
                    failures.append("case %s: LSS_BENCH_BREAK=1 did not change "
                                    "the check" % num)
            p = run(exe, ["compare", files[0], files[1]])
            if p.returncode != 0 or "faster" not in p.stdout:
                failures.append("compare failed")
    for f in failures:
        print("FAIL: " + f)
    print("bench-selfcheck: %s" % ("FAILED" if failures else "passed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
