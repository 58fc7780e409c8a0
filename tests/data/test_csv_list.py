"""Official sample-list formats: space CSV, `::` CSV, npy, concatenation, fail-fast errors with file:line."""

from __future__ import annotations

import os

import numpy as np
import pytest

from jepa.data.csv_list import CSVFormatError, SampleList, read_sample_list
from jepa.data.image_folder import scan_image_folder


def test_space_csv_relative_and_absolute(tmp_path):
    (tmp_path / "a.csv").write_text("videos/x.mp4 3\n/abs/y.mp4 0\n\nimg/z.JPG 1\n")
    rows = read_sample_list(tmp_path / "a.csv")
    assert rows == [(str(tmp_path / "videos/x.mp4"), 3), ("/abs/y.mp4", 0), (str(tmp_path / "img/z.JPG"), 1)]
    sl = SampleList([tmp_path / "a.csv"])
    assert sl[2].is_image and not sl[0].is_image


def test_double_colon_delimiter_allows_spaces(tmp_path):
    (tmp_path / "b.csv").write_text("/data/my video.mp4::4\n/data/other.mp4::0\n")
    assert read_sample_list(tmp_path / "b.csv") == [("/data/my video.mp4", 4), ("/data/other.mp4", 0)]


@pytest.mark.parametrize(
    ("content", "line", "needle"),
    [
        ("/a.mp4 1\n/b.mp4\n", 2, "expected 2 fields"),
        ("/a.mp4 1\n/b.mp4 x\n", 2, "label must be an integer"),
        ("/a.mp4 1\n/b.mp4 1\n/my file.mp4 2\n", 3, "'::' delimiter"),
        ("/a.mp4::1\n/b.mp4::2::3\n", 2, "expected 2 fields"),
        (" 1\n", 1, "empty path"),
    ],
)
def test_malformed_line_fails_fast_with_file_line(tmp_path, content, line, needle):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(CSVFormatError, match=needle) as info:
        read_sample_list(path)
    assert str(info.value).startswith(f"{path}:{line}:")
    assert isinstance(info.value, ValueError)


def test_npy_lists_and_object_arrays_refused(tmp_path):
    np.save(tmp_path / "p.npy", np.array(["/v/a.mp4", "rel/b.mp4"]))
    assert read_sample_list(tmp_path / "p.npy") == [("/v/a.mp4", 0), (str(tmp_path / "rel/b.mp4"), 0)]
    np.save(tmp_path / "o.npy", np.array(["/v/a.mp4", 3], dtype=object), allow_pickle=True)
    with pytest.raises(CSVFormatError, match="o.npy:0:"):
        read_sample_list(tmp_path / "o.npy")


def test_concatenation_offsets(tmp_path):
    (tmp_path / "a.csv").write_text("".join(f"/a{i}.mp4 {i}\n" for i in range(3)))
    (tmp_path / "b.csv").write_text("".join(f"/b{i}.mp4 {i}\n" for i in range(5)))
    sl = SampleList([tmp_path / "a.csv", tmp_path / "b.csv", [("/c0.mp4", 9)]])
    assert len(sl) == 9 and sl.sizes == [3, 5, 1] and sl.cumulative == [3, 8, 9]
    assert sl.locate(0) == (0, 0) and sl.locate(2) == (0, 2) and sl.locate(3) == (1, 0) and sl.locate(8) == (2, 0)
    assert sl[4].path == "/b1.mp4" and sl[4].dataset == 1 and sl[8].label == 9
    with pytest.raises(IndexError, match="out of range"):
        sl[9]
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        SampleList([tmp_path / "missing.csv"])


def test_image_folder(tmp_path):
    for cls, names in {"dog": ["b.jpg", "a.PNG", "notes.txt"], "cat": ["x.jpeg"]}.items():
        os.makedirs(tmp_path / cls / "sub")
        for n in names:
            (tmp_path / cls / "sub" / n).write_bytes(b"x")
    samples, class_map = scan_image_folder(tmp_path)
    assert class_map == {"cat": 0, "dog": 1}
    assert [(os.path.basename(p), lab) for p, lab in samples] == [("x.jpeg", 0), ("a.PNG", 1), ("b.jpg", 1)]
