"""Audit every pinned package of uv.lock for known vulnerabilities (pip-audit), saying only what is true.

Run by ``.ci/run`` (``make audit``) with the tools interpreter (``.tools/bin/python``), where pip-audit is
installed pinned. The pins come from ``uv export --frozen`` (the exact versions ``make install`` puts in
``.venv``); pip-audit asks PyPI's vulnerability data about each.

- a known vulnerability is a failure (exit 1) unless its id is listed in ``.ci/audit-allow.txt`` with
  the reason it does not apply (``ID  package  reason``);
- a pin the service could not answer for is UNVERIFIED, never a pass: it is counted and named, and when
  no pin at all could be checked (no route to the vulnerability service, as on an offline machine) the
  audit says UNVERIFIED and exits 0, so an offline CI still runs the rest; exit 1 never means "offline".
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ALLOW = REPO / ".ci" / "audit-allow.txt"


def allowed(path: Path = ALLOW) -> dict[str, str]:
    """{vulnerability id: reason} from the allow list (blank lines and # comments ignored)."""
    out = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                parts = line.split(None, 2)
                if len(parts) < 3:
                    sys.exit(f"{path}: '{line}' needs an id, a package and the reason it does not apply")
                out[parts[0]] = f"{parts[1]}: {parts[2]}"
    return out


def judge(report: dict, allow: dict[str, str]) -> tuple[list[str], int]:
    """(lines to print, exit code) for pip-audit's JSON ``report`` and the allow list."""
    lines = []
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if "skip_reason" in d]
    found = [(d["name"], d["version"], v) for d in deps for v in d.get("vulns", [])]

    def why(v) -> str | None:
        return allow.get(v["id"]) or next((allow[a] for a in v.get("aliases", []) if a in allow), None)

    unexplained = [(n, ver, v) for n, ver, v in found if why(v) is None]
    for name, version, v in found:
        state = f"allowed ({why(v)})" if why(v) else "NOT EXPLAINED"
        fix = ", ".join(v.get("fix_versions", [])) or "no fixed version"
        lines.append(f"audit: {name} {version}: {v['id']} (fixed in {fix}) - {state}")
    checked = len(deps) - len(skipped)
    if checked == 0:
        lines.append(f"audit: UNVERIFIED - none of the {len(deps)} pins could be checked (the vulnerability service "
                     f"did not answer: {skipped[0]['skip_reason'] if skipped else 'no pins'})")
        return lines, 1 if unexplained else 0
    if skipped:
        names = ", ".join(d["name"] for d in skipped[:10]) + (" ..." if len(skipped) > 10 else "")
        lines.append(f"audit: UNVERIFIED for {len(skipped)} of {len(deps)} pins ({names})")
    lines.append(f"audit: {checked} pins checked, {len(found)} known vulnerabilities, {len(unexplained)} not explained")
    return lines, 1 if unexplained else 0


def main() -> int:
    uv = REPO / ".tools" / "bin" / "uv"
    with tempfile.TemporaryDirectory() as tmp:
        pins = Path(tmp) / "pins.txt"
        export = subprocess.run([str(uv), "export", "--frozen", "--no-hashes", "--no-emit-project",
                                 "--format", "requirements-txt", "-o", str(pins)], cwd=REPO, capture_output=True,
                                text=True)
        if export.returncode:
            print(f"audit: uv export failed: {export.stderr.strip()}", file=sys.stderr)
            return 1
        n_pins = sum(1 for line in pins.read_text().splitlines() if line and not line.startswith(("#", " ")))
        proc = subprocess.run([sys.executable, "-m", "pip_audit", "-r", str(pins), "--no-deps", "--disable-pip",
                               "--progress-spinner", "off", "-f", "json"], capture_output=True, text=True)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"audit: UNVERIFIED - pip-audit could not run over the {n_pins} pins ({last})")
        return 0
    lines, code = judge(report, allowed())
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main())
