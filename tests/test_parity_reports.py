"""The committed parity reports (reports/parity/*.json) carry no stale tolerance override.

An override is stale when it grants more than STALE_FACTOR x the floor its taps needed in that
run, or matched no tap (parity.compare.stale_overrides); such a table no longer says what was
measured, and a bug as large as its slack would pass. A report written before the stale check
existed has no `stale_overrides` field: it fails here too, with the command that regenerates it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPORTS = sorted((ROOT / "reports" / "parity").glob("*.json"))


def test_there_are_reports():
    assert REPORTS, "no reports/parity/*.json: run `make parity MODEL=...` for every model"


@pytest.mark.parametrize("path", REPORTS, ids=[p.stem for p in REPORTS])
def test_report_lists_no_stale_override(path):
    rep = json.loads(path.read_text())
    cmd = (f"python -m parity run {rep['model']}"
           + ("" if rep["dtype"] == "float32" else f" --dtype {rep['dtype']}"))
    assert "stale_overrides" in rep, (
        f"{path.name}: the report predates the stale-override check; regenerate it: {cmd}")
    stale = rep["stale_overrides"]
    assert stale is not None, (
        f"{path.name}: staleness was not evaluated (a case stopped early or errored); re-run "
        f"the whole spec: {cmd}")
    assert not stale, (f"{path.name}: stale tolerance overrides, re-derive them from the "
                       "report's measurements:\n" + "\n".join(
                           f"  {o['pattern']}: {o['why']}" for o in stale))
