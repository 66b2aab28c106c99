#!/usr/bin/env python3
"""The public header must preprocess into plain C declarations that Python's
cffi accepts.  Run as a cffi user would: `cc -E -P -DLSS_STATIC` with the
system headers the public header includes replaced by empty stubs (cffi
knows size_t and the <stdint.h> types itself; the real ones bring compiler
extensions of their own).

  default mode: no compiler extension (__attribute__, __declspec, asm, ...)
                and no '#' line may survive.  A control run without
                LSS_STATIC must show __attribute__, proving the check can
                see one.
  --parse:      feed the output to cffi's cdef(), then dlopen the shared
                library (unless --no-dlopen) and call through it.  Exits 77
                (skipped) when cffi is not installed.

usage: check_cffi.py [--parse] [--lib LIB] [--no-dlopen] HEADER -- CC...
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

EXTENSIONS = re.compile(r'\b(__attribute__|__declspec|__asm__|__asm|asm|'
                        r'__extension__|__inline__|__inline|__restrict__|'
                        r'__restrict|__typeof__|__builtin_\w+)\b')


def preprocess(compiler, header, defines):
    with open(header, encoding='utf-8') as f:
        includes = re.findall(r'^\s*#\s*include\s*<([^>]+)>', f.read(), re.M)
    with tempfile.TemporaryDirectory() as stubs:
        for inc in includes:
            path = os.path.join(stubs, inc)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, 'w').close()
        cmd = compiler + ['-E', '-P', '-nostdinc', '-I', stubs] + defines + [header]
        print('$ ' + ' '.join(cmd), flush=True)
        return subprocess.run(cmd, check=True, stdout=subprocess.PIPE,
                              universal_newlines=True).stdout


def check_text(text):
    problems = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith('#'):
            problems.append('line %d: directive left: %s' % (n, line.strip()))
        m = EXTENSIONS.search(line)
        if m:
            problems.append('line %d: %s: %s' % (n, m.group(1), line.strip()))
    return problems


def parse_with_cffi(text, lib, dlopen):
    try:
        import cffi
    except ImportError:
        print('cffi is not installed for %s: skipped' % sys.executable)
        return 77
    ffi = cffi.FFI()
    ffi.cdef(text)
    print('cffi %s accepted %d lines' % (cffi.__version__, len(text.splitlines())))
    if not dlopen:
        return 0
    so = ffi.dlopen(os.path.abspath(lib))
    name = ffi.string(so.lss_errname(so.LSS_EVERSION))
    if so.LSS_EVERSION != -13 or name != b'EVERSION':
        print('FAIL: lss_errname(LSS_EVERSION) = %r' % name)
        return 1
    if so.lss_version_number() <= 0:
        print('FAIL: lss_version_number() <= 0')
        return 1
    print('called lss_errname and lss_version_number %d through cffi'
          % so.lss_version_number())
    return 0


def main():
    argv = sys.argv[1:]
    if '--' not in argv:
        sys.exit(__doc__)
    split = argv.index('--')
    ap = argparse.ArgumentParser()
    ap.add_argument('--parse', action='store_true')
    ap.add_argument('--lib')
    ap.add_argument('--no-dlopen', action='store_true')
    ap.add_argument('header')
    args = ap.parse_args(argv[:split])
    compiler = argv[split + 1:]

    text = preprocess(compiler, args.header, ['-DLSS_STATIC'])
    if args.parse:
        return parse_with_cffi(text, args.lib, args.lib and not args.no_dlopen)

    problems = check_text(text)
    for p in problems:
        print('FAIL ' + p)
    control = preprocess(compiler, args.header, [])
    if '__attribute__' not in control:
        print('FAIL control: without LSS_STATIC no __attribute__ appeared, '
              'so this check cannot tell it would catch one')
        return 1
    print('control run without LSS_STATIC: __attribute__ seen, as expected')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
