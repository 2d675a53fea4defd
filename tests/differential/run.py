"""Runs the corpus against the reference and ours and prints every difference not in the harness's
DIFFERENCES list. With --record, writes the reference's normalised answers to tests/golden/.

    /usr/bin/python3 tests/differential/run.py [--record] [--schema real|stand-in] [CASE ...]

Needs the reference set up by tests/differential/setup_reference.sh (AZMLINFSRV_REFERENCE names its
folder, /tmp/azmlinfsrv-reference by default) and our binary (AZMLINFSRV, build/azmlinfsrv by default).
Exit status: 0 when no case differs, 1 otherwise.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", help="case folders under tests/differential/corpus (default: all)")
    parser.add_argument("--record", action="store_true", help="write the reference's answers to tests/golden/")
    parser.add_argument("--schema", choices=["real", "stand-in"], default="real",
                        help="the inference-schema ours runs with (the reference always has the real one)")
    parser.add_argument("--verbose", "-v", action="store_true", help="print both logs of a case that differs")
    args = parser.parse_args()
    if not harness.reference_available():
        sys.exit(f"The reference is not set up at {harness.REFERENCE_DIR}: run "
                 "tests/differential/setup_reference.sh first (or set AZMLINFSRV_REFERENCE).")
    schema = (os.path.join(harness.REFERENCE_DIR, "src", "schema") if args.schema == "real"
              else harness.STAND_IN_SCHEMA)
    names = args.cases or harness.case_names()
    differing = 0
    for name in names:
        case = harness.load_case(name)
        ref = harness.run_case(case, "reference")
        if args.record:
            harness.write_golden(case, ref)
        ours = harness.run_case(case, "ours", schema)
        problems = harness.compare(case, ref, ours)
        if problems:
            differing += 1
            print(f"DIFFERS {name}")
            for p in problems:
                print(f"    {p}")
            if args.verbose:
                print("---- reference log\n" + ref["raw_log"] + "---- our log\n" + ours["raw_log"])
        else:
            print(f"same    {name}")
    print(f"{len(names) - differing} of {len(names)} cases the same")
    sys.exit(1 if differing else 0)


if __name__ == "__main__":
    main()
