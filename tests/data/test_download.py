"""The downloader against a real local HTTP server: resume, mirrors, checksums, safe extraction."""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import threading
import time
import zipfile
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from course_lib.data.download import (
    COMPLETE_MARKER,
    DatasetUnavailable,
    UnsafeArchiveError,
    describe_datasets,
    download_file,
    extract_archive,
    fetch,
    is_present,
)
from course_lib.data.registry import DATASETS, DatasetInfo


# --------------------------------------------------------------------------- fixtures


def _wav_bytes(freq: float, seconds: float = 0.25, sr: int = 8000) -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


FILES = {f"toyset/clip_{i}.wav": _wav_bytes(220.0 * (i + 1)) for i in range(3)}
FILES["toyset/labels.txt"] = b"clip_0 a\nclip_1 b\nclip_2 c\n"


def _tar_gz_bytes() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in FILES.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in FILES.items():
            zf.writestr(name, data)
    return buf.getvalue()


TAR_GZ = _tar_gz_bytes()
ZIP = _zip_bytes()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.modes: dict[str, str] = {}  # path -> "cut_first" | "ignore_range" | "404"
        self.log: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        srv = self.server
        range_header = self.headers.get("Range")
        with srv.lock:
            srv.log.append((self.path, range_header))
            n_before = sum(1 for p, _ in srv.log if p == self.path) - 1
        data = srv.files.get(self.path)
        mode = srv.modes.get(self.path, "")
        if data is None or mode == "404":
            self.send_error(404, "Not Found")
            return
        start = 0
        if range_header and mode != "ignore_range":
            start = int(range_header.split("=")[1].split("-")[0])
        if start:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if mode in ("cut_first", "ignore_range") and n_before == 0:
            # Promise the whole body, send half, then drop the connection.
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)
        assert not thread.is_alive()


def _info(urls: list[str], data: bytes, archive: str = "toyset.tar.gz", **kw) -> DatasetInfo:
    fields = dict(
        name="toyset",
        title="Toy set",
        task="testing",
        license="CC0",
        citation="-",
        homepage="http://127.0.0.1/",
        mirrors=tuple(urls),
        archive=archive,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        md5=None,
        root="toyset",
        marker="labels.txt",
        layout="toyset/clip_*.wav",
        splits="-",
        offline_fallback="spoken_digits",
        sr=8000,
        index="index_fsdd",
    )
    fields.update(kw)
    return DatasetInfo(**fields)


def _closed_port_url(path: str = "/x.tar.gz") -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def _check_extracted(root: Path) -> None:
    for name, data in FILES.items():
        assert (root.parent / name).read_bytes() == data
    audio, sr = sf.read(root / "clip_1.wav")
    assert sr == 8000 and audio.shape == (2000,)


# --------------------------------------------------------------------------- fetch


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_fetch_downloads_once_then_uses_cache(server, tmp_path, kind):
    data = TAR_GZ if kind == "tar.gz" else ZIP
    server.files["/toy." + kind] = data
    info = _info([server.url("/toy." + kind)], data, archive="toyset." + kind)

    root = fetch(info, tmp_path, progress=False)
    assert root == (tmp_path / "toyset" / "toyset").resolve()
    _check_extracted(root)
    assert (tmp_path / "toyset" / COMPLETE_MARKER).is_file()
    assert not (tmp_path / "downloads" / info.archive).exists()  # archive removed after extraction
    assert is_present(info, tmp_path)
    hits = len(server.log)
    assert hits == 1

    again = fetch(info, tmp_path, progress=False)
    assert again == root
    assert len(server.log) == hits  # no network the second time


def test_resume_after_cut_connection_uses_range(server, tmp_path):
    server.files["/big.tar.gz"] = TAR_GZ
    server.modes["/big.tar.gz"] = "cut_first"
    dest = tmp_path / "big.tar.gz"
    download_file([server.url("/big.tar.gz")], dest, hashlib.sha256(TAR_GZ).hexdigest(), len(TAR_GZ), progress=False)
    assert dest.read_bytes() == TAR_GZ
    assert not dest.with_name("big.tar.gz.part").exists()
    assert len(server.log) == 2
    assert server.log[0][1] is None
    assert server.log[1][1] == f"bytes={len(TAR_GZ) // 2}-"  # resumed where the cut left off


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    server.files["/big.tar.gz"] = TAR_GZ
    server.modes["/big.tar.gz"] = "ignore_range"
    dest = tmp_path / "big.tar.gz"
    download_file([server.url("/big.tar.gz")], dest, hashlib.sha256(TAR_GZ).hexdigest(), len(TAR_GZ), progress=False)
    assert server.log[1][1] is not None  # a Range was asked for ...
    assert dest.read_bytes() == TAR_GZ  # ... the 200 answer replaced the .part, not appended to it


def test_checksum_mismatch_deletes_file_and_reports_hashes(server, tmp_path):
    server.files["/toy.tar.gz"] = TAR_GZ
    wrong = "0" * 64
    dest = tmp_path / "toy.tar.gz"
    with pytest.raises(DatasetUnavailable) as excinfo:
        download_file([server.url("/toy.tar.gz")], dest, wrong, len(TAR_GZ), progress=False)
    msg = str(excinfo.value)
    assert wrong in msg and hashlib.sha256(TAR_GZ).hexdigest() in msg
    assert "deleted" in msg
    assert not dest.exists() and not dest.with_name("toy.tar.gz.part").exists()


def test_404_on_first_mirror_then_second_mirror(server, tmp_path):
    server.files["/good.tar.gz"] = TAR_GZ
    info = _info([server.url("/missing.tar.gz"), server.url("/good.tar.gz")], TAR_GZ)
    root = fetch(info, tmp_path, progress=False)
    _check_extracted(root)
    assert [p for p, _ in server.log] == ["/missing.tar.gz", "/good.tar.gz"]


def test_no_server_fails_fast_with_actionable_message(tmp_path):
    urls = [_closed_port_url("/a.tar.gz"), _closed_port_url("/b.tar.gz")]
    info = _info(urls, TAR_GZ)
    start = time.monotonic()
    with pytest.raises(DatasetUnavailable) as excinfo:
        fetch(info, tmp_path, progress=False, timeout=2.0)
    assert time.monotonic() - start < 5.0
    err = excinfo.value
    msg = str(err)
    assert "toyset" in msg
    for url in urls:
        assert url in msg
    assert str(tmp_path / "downloads" / "toyset.tar.gz") in msg
    assert "python -m course_lib.data prepare" in msg and "spoken_digits" in msg
    assert [u for u, _ in err.attempts] == urls
    assert isinstance(err, RuntimeError)


def test_manual_download_is_used_without_network(tmp_path):
    info = _info([_closed_port_url()], TAR_GZ)
    manual = tmp_path / "downloads" / info.archive
    manual.parent.mkdir(parents=True)
    manual.write_bytes(TAR_GZ)
    _check_extracted(fetch(info, tmp_path, progress=False, timeout=1.0))


def test_unverified_archive_is_refused_unless_allowed(server, tmp_path):
    server.files["/toy.tar.gz"] = TAR_GZ
    info = _info([server.url("/toy.tar.gz")], TAR_GZ, sha256=None)
    with pytest.raises(DatasetUnavailable, match="allow_unverified"):
        fetch(info, tmp_path, progress=False)
    assert server.log == []  # refused before any download
    _check_extracted(fetch(info, tmp_path, progress=False, allow_unverified=True))


def test_md5_is_checked_when_no_sha256(server, tmp_path):
    server.files["/toy.tar.gz"] = TAR_GZ
    bad = _info([server.url("/toy.tar.gz")], TAR_GZ, sha256=None, md5="0" * 32)
    with pytest.raises(DatasetUnavailable, match="expected md5"):
        fetch(bad, tmp_path, progress=False)
    good = replace(bad, md5=hashlib.md5(TAR_GZ).hexdigest())
    _check_extracted(fetch(good, tmp_path, progress=False))


def test_cache_root_from_environment(server, tmp_path, monkeypatch):
    server.files["/toy.tar.gz"] = TAR_GZ
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "envcache"))
    root = fetch(_info([server.url("/toy.tar.gz")], TAR_GZ), progress=False)
    assert root.is_relative_to((tmp_path / "envcache").resolve())


def test_describe_datasets_lists_every_entry(tmp_path):
    rows = describe_datasets(tmp_path)
    assert {r["name"] for r in rows} == set(DATASETS)
    assert all(r["status"] in ("present", "downloadable", "offline-only") for r in rows)
    assert all(r["status"] != "present" for r in rows)  # empty cache
    # An extracted, marked dataset shows as present.
    fsdd = DATASETS["fsdd"]
    (tmp_path / "fsdd" / fsdd.root / fsdd.marker).mkdir(parents=True)
    (tmp_path / "fsdd" / COMPLETE_MARKER).write_text("{}")
    status = {r["name"]: r["status"] for r in describe_datasets(tmp_path)}
    assert status["fsdd"] == "present"


# --------------------------------------------------------------------------- safe extraction


def _snapshot(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


def _malicious_tar(path: Path, kind: str, outside: Path) -> None:
    with tarfile.open(path, "w:gz") as tar:
        good = tarfile.TarInfo("data/ok.txt")
        good.size = 2
        tar.addfile(good, io.BytesIO(b"ok"))
        if kind == "dotdot":
            evil = tarfile.TarInfo("../evil.txt")
            evil.size = 4
            tar.addfile(evil, io.BytesIO(b"evil"))
        elif kind == "absolute":
            evil = tarfile.TarInfo(str(outside / "abs_evil.txt"))
            evil.size = 4
            tar.addfile(evil, io.BytesIO(b"evil"))
        elif kind == "symlink":
            link = tarfile.TarInfo("data/escape")
            link.type = tarfile.SYMTYPE
            link.linkname = "../../"
            tar.addfile(link)
            evil = tarfile.TarInfo("data/escape/evil.txt")
            evil.size = 4
            tar.addfile(evil, io.BytesIO(b"evil"))
        elif kind == "hardlink":
            link = tarfile.TarInfo("data/hard")
            link.type = tarfile.LNKTYPE
            link.linkname = "../outside.txt"
            tar.addfile(link)
        elif kind == "device":
            dev = tarfile.TarInfo("data/null")
            dev.type = tarfile.CHRTYPE
            dev.devmajor, dev.devminor = 1, 3
            tar.addfile(dev)


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink", "device"])
def test_malicious_tar_is_rejected(tmp_path, kind):
    work = tmp_path / "work"
    work.mkdir()
    archive = tmp_path / f"evil_{kind}.tar.gz"
    _malicious_tar(archive, kind, tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(UnsafeArchiveError):
        extract_archive(archive, work / "target")
    assert _snapshot(tmp_path) == before  # nothing written anywhere, no temp folder left
    assert not (work / "target").exists()


@pytest.mark.parametrize("name", ["../evil.txt", "data/../../evil.txt", "/abs_evil.txt", "C:/evil.txt"])
def test_malicious_zip_is_rejected(tmp_path, name):
    work = tmp_path / "work"
    work.mkdir()
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("data/ok.txt", "ok")
        zf.writestr(zipfile.ZipInfo(name), "evil")
    before = _snapshot(tmp_path)
    with pytest.raises(UnsafeArchiveError, match="absolute|'..'"):
        extract_archive(archive, work / "target")
    assert _snapshot(tmp_path) == before


def test_internal_symlink_is_allowed_and_extraction_replaces_partial_target(tmp_path):
    archive = tmp_path / "ok.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        f = tarfile.TarInfo("data/a.txt")
        f.size = 1
        tar.addfile(f, io.BytesIO(b"a"))
        link = tarfile.TarInfo("data/b.txt")
        link.type = tarfile.SYMTYPE
        link.linkname = "a.txt"
        tar.addfile(link)
    target = tmp_path / "target"
    (target / "junk").mkdir(parents=True)  # an earlier, interrupted extraction
    extract_archive(archive, target)
    assert (target / "data" / "b.txt").read_text() == "a"
    assert not (target / "junk").exists()
    assert (target / COMPLETE_MARKER).is_file()


def test_not_an_archive_is_a_clear_error(tmp_path):
    bogus = tmp_path / "page.html"
    bogus.write_text("<html>rate limited</html>")
    with pytest.raises(ValueError, match="neither a zip nor a tar"):
        extract_archive(bogus, tmp_path / "target")


def test_stalled_server_times_out_and_moves_on(server, tmp_path):
    # A mirror that accepts the connection but never answers must not hang the caller.
    stalled = socket.socket()
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(8)
    try:
        server.files["/good.tar.gz"] = TAR_GZ
        urls = [f"http://127.0.0.1:{stalled.getsockname()[1]}/x.tar.gz", server.url("/good.tar.gz")]
        start = time.monotonic()
        dest = download_file(urls, tmp_path / "x.tar.gz", hashlib.sha256(TAR_GZ).hexdigest(), progress=False, timeout=0.5)
        assert time.monotonic() - start < 4.0
        assert dest.read_bytes() == TAR_GZ
    finally:
        stalled.close()


def test_concurrent_fetches_download_once(server, tmp_path):
    server.files["/toy.tar.gz"] = TAR_GZ
    server.modes["/toy.tar.gz"] = "cut_first"  # slow the first fetch down with a resume
    info = _info([server.url("/toy.tar.gz")], TAR_GZ)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(fetch(info, tmp_path, progress=False))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 3 and len(set(results)) == 1
    _check_extracted(results[0])
    assert len(server.log) == 2  # one download (cut + resume), not three


def test_extra_mirror_is_tried_first(server, tmp_path):
    server.files["/extra.tar.gz"] = TAR_GZ
    info = _info([_closed_port_url()], TAR_GZ)
    _check_extracted(fetch(info, tmp_path, progress=False, mirrors=[server.url("/extra.tar.gz")]))
    assert [p for p, _ in server.log] == ["/extra.tar.gz"]
