"""Run every ``benchmarks/bench_*.py`` in its own process; exit non-zero if any misses its goal.

Each benchmark prints the project's figure, a baseline measured in the same run, and the ratio.
"""

import subprocess
import sys
from pathlib import Path

here = Path(__file__).parent
only = sys.argv[1:]
failed = []
for script in sorted(here.glob("bench_*.py")):
    if only and script.stem not in only and script.stem.removeprefix("bench_") not in only:
        continue
    print(f"== {script.stem}", flush=True)
    if subprocess.run([sys.executable, str(script)]).returncode != 0:
        failed.append(script.stem)
print(f"\n{'all benchmarks met their goals' if not failed else 'MISSED: ' + ', '.join(failed)}")
sys.exit(1 if failed else 0)
