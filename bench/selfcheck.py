#!/usr/bin/env python3
"""bench-selfcheck: lss-bench's verification must catch a wrong answer.

1. `lss-bench --self-check` runs cases in one process: each check value is
   stable across runs, equals its plain SQLite baseline's, and changes when
   the library side reads back one flipped position.
2. Across processes: two runs of the same cases give the same checks, and
   LSS_BENCH_BREAK=1 (the same flip) changes them.
3. `lss-bench compare` reads both result files and exits 0.
4. W1 over HTTP (when shim-server was built next to lss-bench): cases 500
   and 501 give the same checks in two processes, and a simulated wrong
   answer from the server (LSS_BENCH_BREAK=1) fails their verification.
"""
import json
import os
import subprocess
import sys
import tempfile

SIZE = "2"
CASES = ["201", "210", "220", "301", "311", "400"]
HTTP_CASES = ["500", "501"]


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


def http_checks(exe, env, broken):
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        files = [os.path.join(tmp, n) for n in ("a.json", "b.json")]
        common = HTTP_CASES + ["--no-baseline", "--size", SIZE, "--runs", "1",
                               "--json"]
        for path in files:
            if run(exe, common + [path], env).returncode != 0:
                failures.append("HTTP run for %s failed" % os.path.basename(path))
        if not failures:
            a, b = (checks(f) for f in files)
            for num in HTTP_CASES:
                n = int(num)
                if a.get(n) is None or a.get(n) != b.get(n):
                    failures.append("case %s: check not deterministic across "
                                    "processes (%s vs %s)" % (num, a.get(n), b.get(n)))
        for num in HTTP_CASES:
            p = run(exe, [num, "--no-baseline", "--size", SIZE, "--runs", "1"],
                    broken)
            if p.returncode == 0 or "verification FAILED" not in p.stdout:
                failures.append("case %s: a wrong answer passed the "
                                "verification" % num)
    return failures


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
    shim = os.path.join(os.path.dirname(os.path.abspath(exe)), "..",
                        "shim-server", "shim-server")
    if os.access(shim, os.X_OK):
        failures += http_checks(exe, env, broken)
    else:
        print("skip: W1 over HTTP (no %s)" % shim)
    for f in failures:
        print("FAIL: " + f)
    print("bench-selfcheck: %s" % ("FAILED" if failures else "passed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
