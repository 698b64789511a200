"""docs/science.md's cross-source table is the output of scripts/science_table.py."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow(seconds=8)
def test_a_row_of_the_docs_table_is_what_the_script_prints() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "science_table.py"),
            "--only",
            "marin_202603__dclm__llama_2",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    header_1, header_2, row = done.stdout.strip().splitlines()
    doc = (ROOT / "docs" / "science.md").read_text()
    assert f"{header_1}\n{header_2}\n" in doc
    assert row.startswith("| marin_202603 | marin_202603__dclm__llama_2 | 85 | 7 |")
    assert f"\n{row}\n" in doc
