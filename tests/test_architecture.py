"""The import direction of STYLE.md, pinned with import-linter (contracts in `.importlinter`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run(
        [lint_imports, "--config", str(ROOT / ".importlinter")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def test_modules_stay_small() -> None:
    too_big = {
        str(path.relative_to(ROOT)): count
        for path in (ROOT / "gateway").rglob("*.py")
        if (count := len(path.read_text().splitlines())) > 400
    }
    assert not too_big, f"modules over 400 lines, split them along their jobs (STYLE.md): {too_big}"
