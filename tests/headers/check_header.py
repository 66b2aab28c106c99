#!/usr/bin/env python3
"""Compile SOURCE, a program that includes only the public header, with the
compiler command and strict flags given after '--'; link it against the
shared library and run it.  Done twice: as the header ships (LSS_API is the
visibility attribute) and with -DLSS_STATIC (LSS_API empty).

The compile happens here, at test time, so a header that stops building
shows up as this test failing with the compiler's message, not as a build
that stops everyone else's tests.

usage: check_header.py --include DIR --lib LIBFILE --source SRC -- CC FLAGS...
"""
import argparse
import os
import subprocess
import sys
import tempfile


def run(cmd, **kw):
    print('$ ' + ' '.join(cmd), flush=True)
    return subprocess.run(cmd, **kw).returncode


def main():
    argv = sys.argv[1:]
    if '--' not in argv:
        sys.exit(__doc__)
    split = argv.index('--')
    ap = argparse.ArgumentParser()
    ap.add_argument('--include', required=True)
    ap.add_argument('--lib', required=True)
    ap.add_argument('--source', required=True)
    args = ap.parse_args(argv[:split])
    compiler = argv[split + 1:]
    if not compiler:
        sys.exit('no compiler command after --')

    env = dict(os.environ)
    libdir = os.path.dirname(os.path.abspath(args.lib))
    env['LD_LIBRARY_PATH'] = libdir + os.pathsep + env.get('LD_LIBRARY_PATH', '')
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in ([], ['-DLSS_STATIC']):
            name = 'as shipped' if not variant else ' '.join(variant)
            exe = os.path.join(tmp, 'header_check')
            cmd = compiler + variant + ['-I', args.include, args.source,
                                        args.lib, '-o', exe]
            if run(cmd) != 0:
                failed.append(name + ': does not compile cleanly')
                continue
            rc = run([exe], env=env)
            if rc != 0:
                failed.append('%s: program exited with %d' % (name, rc))
    for f in failed:
        print('FAIL ' + f)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
