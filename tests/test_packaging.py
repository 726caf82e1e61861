"""The sdist carries what its own tests need, and the license as packaging tools expect it."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_sdist_holds_the_tests_the_notebooks_and_the_license(tmp_path: Path) -> None:
    built = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(tmp_path),
                            str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    assert "deprecated" not in built.stdout + built.stderr  # such as a license given as a TOML table
    (sdist,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
        top = next(name for name in archive.getnames() if name.endswith("/PKG-INFO") and name.count("/") == 1)
        info = archive.extractfile(top).read().decode()  # type: ignore[union-attr]
    needed = [*(ROOT / "tests").glob("*.py"), *(ROOT / "notebooks").glob("*.ipynb")]
    wanted = {"LICENSE", "conftest.py", "README.md", *(str(path.relative_to(ROOT)) for path in needed)}
    assert wanted <= names, sorted(wanted - names)
    assert "License-Expression: MIT" in info and "License-File: LICENSE" in info
