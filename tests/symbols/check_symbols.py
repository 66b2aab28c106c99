#!/usr/bin/env python3
"""The shared library's dynamic symbol table must honour two promises of
streamstore.h:

  - it exports nothing but the public API: every defined dynamic symbol is
    lss_<name> (internal lss__ names must stay hidden), apart from the
    linker's own markers;
  - it never terminates its host: no reference to exit(), abort() or
    anything that calls them (assert(), err(), error()).

usage:
  check_symbols.py [--nm NM] LIB
      check LIB; exit 1 listing every violation.
  check_symbols.py [--nm NM] --expect NAME [--expect NAME...] LIB
      self-test on a library built to be bad: exit 0 only when the check
      fails and reports exactly the expected names, proving it would catch
      them.

__stack_chk_fail is deliberately allowed: -fstack-protector (a distribution
hardening default) brings it, and it fires only once the stack is already
corrupt.
"""
import argparse
import re
import subprocess
import sys

# Defined by the linker in every shared object.
LINKER_SYMBOLS = {'_init', '_fini', '__bss_start', '_edata', '_end',
                  '__bss_start__', '_bss_end__', '__bss_end__', '__end__'}

# Functions that end the process, or that may call one that does.
TERMINATORS = {'exit', '_exit', '_Exit', 'quick_exit', 'abort',
               '__assert_fail', '__assert_perror_fail', '__assert',
               '__assert2', '__assert_rtn',
               'err', 'errx', 'verr', 'verrx', 'error', 'error_at_line'}

PUBLIC = re.compile(r'lss_[A-Za-z0-9]')


def nm(tool, lib, which):
    out = subprocess.run([tool, '-D', which, lib], check=True,
                         stdout=subprocess.PIPE,
                         universal_newlines=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        kind, name = parts[-2], parts[-1].split('@')[0]
        syms.append((kind, name))
    return syms


def violations(tool, lib):
    found = []
    exported = [(k, n) for k, n in nm(tool, lib, '--defined-only')
                if k != 'A' and n not in LINKER_SYMBOLS]
    if not exported:
        found.append(('<none>', 'no exported symbol at all: not the library?'))
    for _, name in exported:
        if not PUBLIC.match(name):
            found.append((name, 'exported outside the lss_ namespace'))
    for _, name in nm(tool, lib, '--undefined-only'):
        if name in TERMINATORS:
            found.append((name, 'can terminate the host process'))
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--nm', default='nm')
    ap.add_argument('--expect', action='append', default=[])
    ap.add_argument('lib')
    args = ap.parse_args()

    found = violations(args.nm, args.lib)
    for name, why in found:
        print('%s: %s: %s' % (args.lib, name, why))
    if not args.expect:
        if not found:
            print('%s: exports only lss_* and never calls exit/abort' % args.lib)
        return 1 if found else 0

    names = {name for name, _ in found}
    missed = sorted(set(args.expect) - names)
    extra = sorted(names - set(args.expect))
    for name in missed:
        print('SELF-TEST FAIL: the check missed %s' % name)
    for name in extra:
        print('SELF-TEST FAIL: the check flagged %s, which was not planted' % name)
    if missed or extra:
        return 1
    print('self-test: the check caught all %d planted violations' % len(names))
    return 0


if __name__ == '__main__':
    sys.exit(main())
