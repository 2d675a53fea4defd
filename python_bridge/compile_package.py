"""Byte-compiles the azureml_inference_server_http package, for the build tree and for meson install.

    compile_package.py build DIR STAMP     compile DIR in place, then touch STAMP (a build target's output)
    compile_package.py install DIR         compile the installed DIR (under $DESTDIR, as meson stages it)

Without bytecode beside it, Python compiles the package at every worker start when PYTHONDONTWRITEBYTECODE
is set, as in many containers. Timestamp-checked .pyc files: an edited .py is never shadowed by stale bytecode.
"""
import compileall
import os
import sys


def main(argv):
    if len(argv) == 4 and argv[1] == "build":
        if not compileall.compile_dir(argv[2], quiet=1):
            # A read-only source tree, say: the package still works, compiled at each start instead.
            print("compile_package.py: warning: no bytecode written for %s (see above); workers will "
                  "compile the package when they start" % argv[2], file=sys.stderr)
        with open(argv[3], "w", encoding="utf-8") as stamp:
            stamp.write("compiled %s\n" % argv[2])
        return 0
    if len(argv) == 3 and argv[1] == "install":
        staged = os.environ.get("DESTDIR", "") + argv[2]
        # the tracebacks name where the files will be, not the staging folder
        return 0 if compileall.compile_dir(staged, ddir=argv[2], quiet=1) else 1
    sys.exit("usage: compile_package.py build DIR STAMP | install DIR")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
