"""The repository stands alone: a user's clone has only what git tracks, so nothing in it may send a
reader to documents outside it, and what meson.build declares (the MIT license) must be there."""

import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
# Documents kept outside the repository while it was being built; citing them leaves a reader stranded.
OUTSIDE = re.compile(r"(CONTRACT|DIFFERENCES|DESIGN|REFERENCE)\.md|shared/spec|\.\./shared")


def tracked_files():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are unknown (run from a clone)")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_no_tracked_file_cites_documents_outside_the_repository():
    offenders = []
    for path in tracked_files():
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line) and path.name != "test_repository.py":
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "cite docs/behaviour.md, docs/differences.md or docs/architecture.md instead:\n" + "\n".join(
        offenders)


def test_no_debugger_logs_or_core_files_are_tracked():
    names = {p.name for p in tracked_files()}
    assert not {n for n in names if n == "gdb.out" or n == "core" or re.fullmatch(r"core\.\d+|vgcore\..*", n)}


def test_the_license_meson_declares_is_present():
    declared = re.search(r"license:\s*'([^']+)'", (ROOT / "meson.build").read_text())
    assert declared and declared.group(1) == "MIT"
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License") and "Permission is hereby granted" in license_text


def test_the_behaviour_doc_keeps_every_checklist_item_tests_are_named_after():
    doc = (ROOT / "docs" / "behaviour.md").read_text()
    items = set(int(n) for n in re.findall(r"^(\d+)\. ", doc.split("## 9.")[1], re.M))
    named = set()
    for test in (ROOT / "tests").rglob("test_*.py"):
        named |= {int(n) for n in re.findall(r"def test_c(\d+)_", test.read_text())}
    assert named, "no test named after a checklist item was found"
    assert named <= items, sorted(named - items)
