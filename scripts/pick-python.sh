#!/bin/sh
# Print the interpreter the virtualenv is made from (the Makefile's PY; `make PY=...` overrides it).
#
# The distribution's python3 first, when it is 3.11 or newer and can make a virtualenv: Debian and Ubuntu
# build theirs with profile-guided and link-time optimisation and link the interpreter statically, and that
# costs ~10% less CPU on this project's record handling than a default source build such as pyenv's (which
# has neither: measured in BENCHMARKS.md, "The interpreter").  Else python3 on PATH.  Arguments, if any, are
# the candidates instead, in order (tests/test_pick_python.py).
[ $# -gt 0 ] || set -- /usr/bin/python3 python3
for py in "$@"; do
    if "$py" -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "$py"
        exit 0
    fi
done
echo python3
