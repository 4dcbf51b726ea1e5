"""`make audit` (scripts/audit_pins.py) says only what is true: an unexplained vulnerability fails, an
explained one passes naming its reason, and pins the service could not answer for are UNVERIFIED."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "audit_pins.py"
spec = importlib.util.spec_from_file_location("audit_pins", SCRIPT)
audit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(audit)

VULN = {"id": "GHSA-xxxx-0001", "aliases": ["CVE-2026-1"], "fix_versions": ["2.0"]}


def report(*deps):
    return {"dependencies": list(deps)}


def test_an_unexplained_vulnerability_fails_and_an_explained_one_passes_with_its_reason():
    deps = ({"name": "lib", "version": "1.0", "vulns": [VULN]}, {"name": "ok", "version": "3.1", "vulns": []})
    lines, code = audit.judge(report(*deps), {})
    assert code == 1 and "lib 1.0: GHSA-xxxx-0001 (fixed in 2.0) - NOT EXPLAINED" in lines[0]
    assert lines[-1] == "audit: 2 pins checked, 1 known vulnerabilities, 1 not explained"
    lines, code = audit.judge(report(*deps), {"CVE-2026-1": "lib: only its server, which we never start"})
    assert code == 0 and "allowed (lib: only its server, which we never start)" in lines[0]


def test_pins_that_could_not_be_checked_are_unverified_never_a_pass():
    skipped = {"name": "a", "skip_reason": "Dependency not found on PyPI and could not be audited: a (1)"}
    lines, code = audit.judge(report(skipped, dict(skipped, name="b")), {})
    assert code == 0 and lines == ["audit: UNVERIFIED - none of the 2 pins could be checked (the vulnerability "
                                   "service did not answer: Dependency not found on PyPI and could not be audited: "
                                   "a (1))"]
    lines, code = audit.judge(report(skipped, {"name": "c", "version": "1", "vulns": []}), {})
    assert code == 0 and "audit: UNVERIFIED for 1 of 2 pins (a)" in lines
    assert lines[-1] == "audit: 1 pins checked, 0 known vulnerabilities, 0 not explained"


def test_the_allow_list_needs_a_reason(tmp_path):
    good = tmp_path / "allow.txt"
    good.write_text("# comment\n\nGHSA-1  lib  only the CLI, which we never run  # note\n")
    assert audit.allowed(good) == {"GHSA-1": "lib: only the CLI, which we never run"}
    bad = tmp_path / "bad.txt"
    bad.write_text("GHSA-1 lib\n")
    with pytest.raises(SystemExit, match="needs an id, a package and the reason"):
        audit.allowed(bad)
    assert audit.allowed(audit.ALLOW) == {}  # the project's list: nothing allowed today
