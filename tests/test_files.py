"""One atomic_write, in the lowest layer: the records, Ray's shipped run folders and downloads all replace files
through it, so an interrupted or failed write never leaves a file that looks complete."""

import hashlib

import pytest

from ganzoo.core import records
from ganzoo.sweep import ray
from ganzoo.system import download, files


def test_every_writer_uses_the_one_atomic_write():
    assert records.atomic_write is files.atomic_write is download.atomic_write is ray.atomic_write


def test_a_download_that_fails_its_hash_leaves_nothing_and_a_good_one_lands_whole(tmp_path, monkeypatch):
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GANZOO_OFFLINE", "0")
    source = tmp_path / "weights.bin"
    source.write_bytes(b"weights" * 1000)
    good = hashlib.sha256(source.read_bytes()).hexdigest()
    with pytest.raises(download.DownloadError, match="expected 0000"):
        download.fetch(source.as_uri(), "w.bin", sha256="0" * 64, what="test weights", subdir="t")
    assert list((tmp_path / "cache" / "t").iterdir()) == []  # no partial file, no unverified file
    path = download.fetch(source.as_uri(), "w.bin", sha256=good, what="test weights", subdir="t")
    assert path.read_bytes() == source.read_bytes() and [p.name for p in path.parent.iterdir()] == ["w.bin"]


def test_a_shipped_run_folder_is_written_whole(tmp_path):
    ray._write_run_folder(tmp_path / "run", {"checkpoint.pt": b"ck", "samples.png": b"png"})
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == {"checkpoint.pt": b"ck",
                                                                              "samples.png": b"png"}
