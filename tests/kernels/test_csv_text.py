"""kernels.csv_text: cells a spreadsheet would run as a formula are neutralised (night-safety item 2)."""

from __future__ import annotations

import csv
import io

import pytest

from dfscan.kernels.csv_text import csv_text, safe_cell

# The names, and the cells they must become.
HOSTILE = {"=cmd|' -C calc'!A0.mp4": "'=cmd|' -C calc'!A0.mp4", "+SUM(1,2).mp4": "'+SUM(1,2).mp4",
           "@evil.mp4": "'@evil.mp4", "-x.mp4": "'-x.mp4", "\tTAB.mp4": "'\tTAB.mp4", "\rCR.mp4": "'\rCR.mp4"}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_formula_like_cell_gets_a_leading_quote(name):
    assert safe_cell(name) == HOSTILE[name]


@pytest.mark.parametrize("value", ["a.mp4", "dir/=x.mp4", "'quoted", "", "-0.25", "+3", "1e-07", "-.5", "-2E+3", 0.25,
                                   -1, None, True])
def test_other_cells_and_plain_numbers_are_unchanged(value):
    assert safe_cell(value) is value


@pytest.mark.parametrize("value", ["-1+1", "-1.mp4", "+1e", "-", "=1"])
def test_only_a_whole_plain_number_escapes_the_quote(value):
    assert safe_cell(value) == "'" + value


def test_a_document_round_trips_through_the_csv_module_with_a_newline_in_a_name():
    names = [*HOSTILE, "two\nlines.mp4", "comma, \"quote\".mp4", "plain.mp4"]
    text = csv_text(["path", "p_fake"], [[name, -0.5] for name in names[:3]]
                    + [{"path": name, "p_fake": None} for name in names[3:]])
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["path", "p_fake"]
    assert [r[0] for r in rows[1:]] == [HOSTILE.get(name, name) for name in names]
    assert [r[1] for r in rows[1:]] == ["-0.5"] * 3 + [""] * (len(names) - 3)
    assert '"two\nlines.mp4"' in text  # quoted, so the newline stays inside its cell
