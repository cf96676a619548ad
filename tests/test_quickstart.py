"""CI runs exactly the README's two quick-start commands."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- quickstart -->\s*```sh\n(.*?)```", readme, re.S)
    assert block, "README.md lost its quickstart block"
    documented = [line for line in block[1].splitlines() if line.strip()]
    script = (ROOT / ".ci" / "run").read_text().splitlines()
    run = [script[i + 1] for i, line in enumerate(script) if line.startswith("# quickstart:")]
    assert len(documented) == 2
    assert run == documented
