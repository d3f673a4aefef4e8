"""CSV loading: exact round trips, and every malformed file named by file, line and column."""
from __future__ import annotations

import numpy as np
import pytest

from lpn import datasets
from lpn.datasets import DatasetError


def _write(tmp_path, text: str, name: str = "data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(path, label=None) -> str:
    with pytest.raises(DatasetError) as info:
        datasets.load_csv(path, label=label)
    message = str(info.value)
    assert str(path) in message
    return message


def test_write_then_load_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(25, 4)) * 1e3
    X[0, 0] = 0.1 + 0.2  # a value whose decimal form needs every digit
    y = rng.integers(0, 5, size=25)
    path = tmp_path / "s.csv"
    datasets.write_csv(path, X, y, label="cls")
    X2, y2, names = datasets.load_csv(path, label="cls")
    assert names == ["x0", "x1", "x2", "x3"]
    assert X2.dtype == np.float64 and np.array_equal(X2, X)
    assert y2.dtype == np.int64 and np.array_equal(y2, y)


def test_label_column_may_be_anywhere_and_absent(tmp_path):
    path = _write(tmp_path, "a,label,b\n1,2,3\n4,0,6.5\n")
    X, y, names = datasets.load_csv(path, label="label")
    assert names == ["a", "b"] and X.tolist() == [[1, 3], [4, 6.5]] and y.tolist() == [2, 0]
    X, y, names = datasets.load_csv(path)
    assert y is None and names == ["a", "label", "b"] and X.shape == (2, 3)


def test_whitespace_blank_lines_bom_and_integral_float_labels(tmp_path):
    path = tmp_path / "w.csv"
    path.write_bytes("\ufeff a , y \n\n 1.5 , 3.0 \n\n2,1\n".encode("utf-8"))
    X, y, names = datasets.load_csv(path, label="y")
    assert names == ["a"] and X.tolist() == [[1.5], [2.0]] and y.tolist() == [3, 1]


def test_empty_file(tmp_path):
    assert "empty file" in _error(_write(tmp_path, ""))
    assert "empty file" in _error(_write(tmp_path, "\n  \n", "blank.csv"))


def test_header_without_rows(tmp_path):
    assert "no data rows" in _error(_write(tmp_path, "a,b\n"))


def test_missing_label_column(tmp_path):
    message = _error(_write(tmp_path, "a,b\n1,2\n"), label="target")
    assert "line 1" in message and "'target'" in message and "a, b" in message


def test_ragged_row(tmp_path):
    message = _error(_write(tmp_path, "a,b,c\n1,2,3\n4,5\n"))
    assert "line 3" in message and "2 values" in message and "3 columns" in message


def test_text_in_a_numeric_column(tmp_path):
    message = _error(_write(tmp_path, "a,b\n1,2\n3,four\n"))
    assert "line 3" in message and "column 2 ('b')" in message and "'four' is not a number" in message


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity"])
def test_non_finite_values(tmp_path, value):
    message = _error(_write(tmp_path, f"a,b\n1,2\n3,4\n5,{value}\n"))
    assert "line 4" in message and "column 2 ('b')" in message and "not a finite number" in message


def test_line_numbers_count_blank_lines(tmp_path):
    message = _error(_write(tmp_path, "a,b\n\n1,2\n\n3,x\n"))
    assert "line 5" in message


def test_empty_cell(tmp_path):
    message = _error(_write(tmp_path, "a,b\n1,\n"))
    assert "line 2" in message and "column 2 ('b')" in message and "empty value" in message


@pytest.mark.parametrize("value", ["2.5", "-1", "cat"])
def test_bad_class_labels(tmp_path, value):
    message = _error(_write(tmp_path, f"a,y\n1,0\n2,{value}\n"), label="y")
    assert "line 3" in message and "column 2 ('y')" in message


def test_duplicate_and_unnamed_columns(tmp_path):
    assert "appears twice" in _error(_write(tmp_path, "a,b,a\n1,2,3\n"))
    assert "column 2 has no name" in _error(_write(tmp_path, "a,,c\n1,2,3\n", "unnamed.csv"))


def test_only_a_label_column(tmp_path):
    assert "no feature columns" in _error(_write(tmp_path, "y\n1\n"), label="y")


def test_unreadable_files(tmp_path):
    assert "cannot read" in _error(tmp_path / "missing.csv")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("a,b\n1,\xe9\n".encode("latin-1"))
    assert "UTF-8" in _error(bad)


def test_write_csv_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="2-D"):
        datasets.write_csv(tmp_path / "a.csv", np.zeros(3))
    with pytest.raises(ValueError, match="one label per sample"):
        datasets.write_csv(tmp_path / "a.csv", np.zeros((3, 2)), [1, 2])
    with pytest.raises(ValueError, match="clashes"):
        datasets.write_csv(tmp_path / "a.csv", np.zeros((1, 2)), [1], label="x1")


def test_digits_are_scaled_to_unit_range():
    X, y = datasets.digits()
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert X.min() == 0.0 and X.max() == 1.0
    assert set(np.unique(y)) == set(range(10))
