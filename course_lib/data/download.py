"""Download, verify and safely extract the real datasets of the registry, once.

``fetch(name)`` returns the folder of an extracted dataset. The first call downloads the
archive from the first mirror that answers (resuming a cut download with an HTTP Range
request), checks its SHA-256 (or the distributor's MD5) before anything reads it, unpacks it
into a temporary folder next to the target, refusing entries that would land outside it, and
renames the folder into place with a completion marker. Later calls find the marker and touch
no network. With no network, or every mirror dead, ``DatasetUnavailable`` says within seconds
what was tried and what to do instead.

Only the standard library is used for HTTP, so the downloader works wherever Python does.

Notebook: 00_welcome.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import http.client
import json
import os
import shutil
import socket
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

from course_lib.data.registry import DATASETS, FIXTURE_MIRROR_ENV, DatasetInfo, fixture_mirror, get_info

__all__ = [
    "file_digest",
    "DatasetUnavailable",
    "UnsafeArchiveError",
    "COMPLETE_MARKER",
    "dataset_dir",
    "is_present",
    "download_file",
    "extract_archive",
    "fetch",
    "describe_datasets",
    "FixtureMirrorError",
    "MINIATURE_INDEX",
    "MINIATURE_FORMAT",
]

COMPLETE_MARKER = ".complete.json"
_CHUNK = 1 << 20
# Attempts per mirror: the first try plus resumes after a cut connection. Bounded so a
# server that keeps cutting cannot hold the caller forever.
_ATTEMPTS_PER_MIRROR = 3
# Seconds to wait for a mirror to accept a connection: a dead network fails within seconds.
_CONNECT_TIMEOUT = 3.0
_USER_AGENT = "course_lib-downloader/1 (+https://github.com/everything-is-a-mapping/audio-nn-course)"
_PREPARE_HINT = "python -m course_lib.data prepare"


class DatasetUnavailable(RuntimeError):
    """A dataset could not be obtained: every mirror failed, or its archive could not be trusted.

    Attributes
    ----------
    dataset : str
        Dataset name (or the archive name when no dataset was given).
    attempts : list of (str, str)
        Each URL tried and the error it gave.
    manual_path : Path or None
        Where a hand-downloaded archive is picked up.
    """

    def __init__(
        self,
        message: str,
        *,
        dataset: str = "",
        attempts: Sequence[tuple[str, str]] = (),
        manual_path: Path | None = None,
    ) -> None:
        super().__init__(message)
        self.dataset = dataset
        self.attempts = list(attempts)
        self.manual_path = manual_path


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the target folder, or is not a plain file."""


class FixtureMirrorError(RuntimeError):
    """``COURSE_FIXTURE_MIRROR`` is set but its server cannot be used.

    Deliberately not a ``DatasetUnavailable``: a test run that asked for the miniature fixtures
    must fail, not fall back quietly to the offline sets.
    """


# The file a miniature-fixture server publishes next to its archives (course_lib.data.miniature).
MINIATURE_INDEX = "miniature.json"
MINIATURE_FORMAT = "course_lib.miniature/1"
_announced_fixtures: set[str] = set()


# --------------------------------------------------------------------------- paths


def _cache_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Return the data cache folder: ``root``, else :func:`course_lib.runtime.data_root`.

    Parameters
    ----------
    root : path-like, optional
        Explicit folder. Without it: :func:`course_lib.runtime.data_root` (``COURSE_DATA``, Google
        Drive on Colab when mounted, else ``<repo>/data/cache``).

    Returns
    -------
    Path
        The folder (not created here).

    Notes
    -----
    Notebook: 00_welcome.
    """
    if root is not None:
        return Path(root).expanduser()
    from course_lib.runtime import data_root  # lazy: the runtime imports torch

    return data_root()


def dataset_dir(name_or_info: str | DatasetInfo, root: str | os.PathLike[str] | None = None) -> Path:
    """Return the dataset root a successful ``fetch`` yields (it may not exist yet).

    Parameters
    ----------
    name_or_info : str or DatasetInfo
        Registry name or entry.
    root : path-like, optional
        Cache root (default: ``course_lib.runtime.data_root()``).

    Returns
    -------
    Path
        ``<cache>/<name>/<info.root>``.

    Notes
    -----
    Notebook: 00_welcome.
    """
    info = get_info(name_or_info)
    return (_cache_root(root) / info.name / info.root).resolve()


def is_present(name_or_info: str | DatasetInfo, root: str | os.PathLike[str] | None = None) -> bool:
    """Whether the dataset is extracted and complete in the cache (no network is used).

    Parameters
    ----------
    name_or_info : str or DatasetInfo
        Registry name or entry.
    root : path-like, optional
        Cache root (default: ``course_lib.runtime.data_root()``).

    Returns
    -------
    bool

    Notes
    -----
    Notebook: 00_welcome.
    """
    info = get_info(name_or_info)
    extracted = _cache_root(root) / info.name
    return (extracted / COMPLETE_MARKER).is_file() and (dataset_dir(info, root) / info.marker).exists()


# --------------------------------------------------------------------------- hashing


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (``hashlib.file_digest``: read in blocks, never all at once).

    The one file-hashing helper of the data layer: downloads, offline manifests and miniature
    mirrors all check their files with it.
    """
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def _check_integrity(path: Path, sha256: str | None, md5: str | None) -> str | None:
    """Return None when the file matches, else a message naming expected and got hashes."""
    if sha256 is not None:
        got = file_digest(path, "sha256")
        if got != sha256.lower():
            return f"checksum mismatch: expected sha256 {sha256}, got sha256 {got}"
    elif md5 is not None:
        got = file_digest(path, "md5")
        if got != md5.lower():
            return f"checksum mismatch: expected md5 {md5}, got md5 {got}"
    return None


# --------------------------------------------------------------------------- download


class _CutShort(Exception):
    """The server closed the connection before the whole body arrived (resumable)."""


def _stream_once(url: str, part: Path, size: int | None, timeout: float, progress: bool, desc: str) -> None:
    """One HTTP request: continue ``part`` with a Range request if it has bytes, else start it.

    Raises ``_CutShort`` when the body stops early (the caller resumes), ``urllib.error.*`` or
    ``OSError`` for anything else.
    """
    from tqdm.auto import tqdm

    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        # More bytes than the archive has: the .part belongs to something else.
        part.unlink()
        offset = 0
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset and size is not None and offset == size:
            return  # the .part is already complete
        if err.code == 416:
            # The server cannot continue this .part: drop it so the next attempt starts clean.
            part.unlink(missing_ok=True)
            raise _CutShort(f"HTTP 416 for Range bytes={offset}-; restarting from 0") from err
        raise
    with response:
        status = getattr(response, "status", 200)
        if offset and status == 206:
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {offset}-"):
                part.unlink(missing_ok=True)
                raise _CutShort(f"server resumed at the wrong place ({content_range!r}); restarting")
            mode = "ab"
        else:
            # 200 to a Range request: the server ignored it and sends the whole file.
            offset, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        expected_body = int(length) if length is not None and length.isdigit() else None
        total = size if size is not None else (offset + expected_body if expected_body is not None else None)
        received = 0
        with open(part, mode) as out, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=desc, disable=not progress, leave=False,
        ) as bar:
            while True:
                try:
                    block = response.read(_CHUNK)
                except (http.client.IncompleteRead, ConnectionError, socket.timeout, TimeoutError) as err:
                    if isinstance(err, http.client.IncompleteRead) and err.partial:
                        out.write(err.partial)
                    raise _CutShort(f"connection cut after {offset + received} bytes ({err!r})") from err
                if not block:
                    break
                out.write(block)
                received += len(block)
                bar.update(len(block))
        if expected_body is not None and received < expected_body:
            raise _CutShort(f"connection cut after {offset + received} of {offset + expected_body} bytes")


def _probe(url: str, timeout: float) -> None:
    """Open and close a TCP connection to the mirror's host with a short timeout.

    urllib uses one timeout for connecting and for reading; a network that silently drops
    packets would then cost the full read timeout per mirror. Skipped behind a proxy, where
    the host is not reached directly.
    """
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or urllib.request.getproxies().get(parsed.scheme):
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as err:
        raise urllib.error.URLError(err) from err


def _describe_error(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"cannot connect ({err.reason})"
    return f"{type(err).__name__}: {err}"


def _unavailable_message(
    label: str,
    attempts: Sequence[tuple[str, str]],
    manual_path: Path,
    offline_fallback: str | None,
    checksum: str | None,
) -> str:
    lines = [f"Dataset {label!r} could not be downloaded. Tried:"]
    lines += [f"  - {url}\n      -> {error}" for url, error in attempts] or ["  (no URL)"]
    lines.append("What to do:")
    lines.append(
        f"  1. check the network and try again, or give another mirror: fetch({label!r}, mirrors=[url]);"
    )
    lines.append(
        f"  2. or download the archive by hand and put it at exactly\n       {manual_path}\n"
        "     then call again (it is verified before use"
        + (f": {checksum})" if checksum else ")")
        + ";"
    )
    fallback = f" the offline set {offline_fallback!r}" if offline_fallback else " the offline sets"
    lines.append(f"  3. or use{fallback} instead: build it with `{_PREPARE_HINT}`.")
    return "\n".join(lines)


def download_file(
    urls: str | Sequence[str],
    dest: str | os.PathLike[str],
    sha256: str | None,
    size: int | None = None,
    progress: bool = True,
    timeout: float = 10.0,
    *,
    md5: str | None = None,
    allow_unverified: bool = False,
    label: str | None = None,
    offline_fallback: str | None = None,
) -> Path:
    """Download one file from the first mirror that works, resuming and verifying it.

    The body streams to ``dest + ".part"``; a cut connection is resumed with an HTTP Range
    request (a server that ignores Range and answers 200 restarts the file cleanly). The
    finished file is checked against ``sha256`` (or ``md5``) and only then moved to ``dest``
    with ``os.replace``. A file already at ``dest`` is verified and reused without network.

    Parameters
    ----------
    urls : str or sequence of str
        Mirrors of the same file, tried in order. 404, refused connections and timeouts move
        on to the next one.
    dest : path-like
        Final path of the file.
    sha256 : str or None
        Expected hex SHA-256.
    size : int, optional
        Expected size in bytes (used for the progress bar and to detect a foreign ``.part``).
    progress : bool
        Show a ``tqdm.auto`` progress bar.
    timeout : float
        Seconds to wait for the next bytes of a response; connecting waits at most
        ``min(timeout, 3)`` seconds per mirror, so a dead network fails within seconds.
    md5 : str, optional
        Distributor's hex MD5, checked only when ``sha256`` is None.
    allow_unverified : bool
        Accept a file with no known checksum (its SHA-256 is printed so it can be pinned).
    label : str, optional
        Dataset name for messages (defaults to the file name).
    offline_fallback : str, optional
        Offline set named in the error message.

    Returns
    -------
    Path
        ``dest``, complete and verified.

    Raises
    ------
    DatasetUnavailable
        Every mirror failed, the checksum did not match (the bad file is deleted), or no checksum
        is known and ``allow_unverified`` is False.

    Notes
    -----
    Notebook: 00_welcome.
    """
    url_list = [urls] if isinstance(urls, str) else list(urls)
    dest = Path(dest)
    label = label or dest.name
    part = dest.with_name(dest.name + ".part")
    checksum = f"sha256 {sha256}" if sha256 else (f"md5 {md5}" if md5 else None)

    if sha256 is None and md5 is None and not allow_unverified:
        raise DatasetUnavailable(
            f"Dataset {label!r}: no published checksum is known for {dest.name}, so a download "
            "could not be verified and is refused. Pass allow_unverified=True to accept it "
            f"anyway, or use the offline set instead (`{_PREPARE_HINT}`).",
            dataset=label, manual_path=dest,
        )

    if dest.exists():
        problem = _check_integrity(dest, sha256, md5)
        if problem is None:
            return dest
        print(f"{label}: {dest} failed verification ({problem}); deleted, downloading again.")
        dest.unlink()

    dest.parent.mkdir(parents=True, exist_ok=True)
    attempts: list[tuple[str, str]] = []
    for url in url_list:
        error: str | None = None
        try:
            _probe(url, min(timeout, _CONNECT_TIMEOUT))
        except urllib.error.URLError as err:
            attempts.append((url, _describe_error(err)))
            continue
        for attempt in range(_ATTEMPTS_PER_MIRROR):
            try:
                _stream_once(url, part, size, timeout, progress, desc=dest.name)
                error = None
                break
            except _CutShort as err:
                error = str(err)
                continue  # resume from what the .part holds
            except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as err:
                error = _describe_error(err)
                break
        if error is not None:
            attempts.append((url, error if attempt == 0 else f"{error} (after {attempt + 1} attempts)"))
            continue
        if size is not None and part.stat().st_size != size:
            got = part.stat().st_size
            attempts.append((url, f"size mismatch: expected {size} bytes, got {got}; deleted"))
            part.unlink()
            continue
        problem = _check_integrity(part, sha256, md5)
        if problem is not None:
            part.unlink()
            attempts.append((url, f"{problem}; the bad file was deleted"))
            continue
        if sha256 is None and md5 is None:
            print(f"{label}: unverified download accepted; its sha256 is {file_digest(part, 'sha256')}")
        os.replace(part, dest)
        return dest

    raise DatasetUnavailable(
        _unavailable_message(label, attempts, dest, offline_fallback, checksum),
        dataset=label, attempts=attempts, manual_path=dest,
    )


# --------------------------------------------------------------------------- extraction


def _safe_relpath(name: str, archive: Path) -> PurePosixPath:
    """Check an archive member name and return it as a relative POSIX path."""
    text = name.replace("\\", "/")
    path = PurePosixPath(text)
    if text.startswith("/") or path.is_absolute() or (len(text) > 1 and text[1] == ":"):
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} has an absolute path; refusing to extract")
    if ".." in path.parts:
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} contains '..'; refusing to extract")
    return path


def _inside(base: PurePosixPath, link: str) -> bool:
    """Whether ``link`` resolved against folder ``base`` (both relative) stays inside the root."""
    if link.startswith("/") or PurePosixPath(link).is_absolute():
        return False
    depth = len(base.parts)
    for part in PurePosixPath(link).parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return False
        elif part != ".":
            depth += 1
    return True


def _checked_members(tar: tarfile.TarFile, archive: Path) -> Iterator[tarfile.TarInfo]:
    """Yield the members of ``tar`` in archive order, raising on the first unsafe one.

    Checking while iterating reads a compressed tar once instead of twice (listing a .tar.bz2
    means decompressing all of it); everything goes to a temporary folder that is deleted if a
    later member turns out to be unsafe.
    """
    for member in tar:
        rel = _safe_relpath(member.name, archive)
        if member.isdev() or not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            raise UnsafeArchiveError(
                f"{archive.name}: member {member.name!r} is a device or special file; refusing to extract"
            )
        if member.issym() and not _inside(rel.parent, member.linkname):
            raise UnsafeArchiveError(
                f"{archive.name}: symlink {member.name!r} -> {member.linkname!r} points outside the "
                "target; refusing to extract"
            )
        if member.islnk() and not _inside(PurePosixPath(""), member.linkname):
            raise UnsafeArchiveError(
                f"{archive.name}: hard link {member.name!r} -> {member.linkname!r} points outside the "
                "target; refusing to extract"
            )
        yield member


def _check_zip(zf: zipfile.ZipFile, archive: Path) -> int:
    total = 0
    for info in zf.infolist():
        rel = _safe_relpath(info.filename, archive)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            target = zf.read(info).decode("utf-8", "replace")
            if not _inside(rel.parent, target):
                raise UnsafeArchiveError(
                    f"{archive.name}: symlink {info.filename!r} -> {target!r} points outside the "
                    "target; refusing to extract"
                )
        elif mode and any(test(mode) for test in (stat.S_ISCHR, stat.S_ISBLK, stat.S_ISFIFO, stat.S_ISSOCK)):
            raise UnsafeArchiveError(
                f"{archive.name}: member {info.filename!r} is a device or special file; refusing to extract"
            )
        total += info.file_size
    return total


def _ensure_space(folder: Path, needed: int, archive: Path) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise OSError(
            f"Extracting {archive.name} needs about {needed / 1e9:.2f} GB but {folder} has "
            f"{free / 1e9:.2f} GB free: free some space or point COURSE_DATA at a larger disk."
        )


def extract_archive(archive: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Extract a zip or tar(.gz/.bz2/.xz) archive safely and atomically into ``target``.

    Every member is checked before it is written: absolute paths, ``..`` components,
    symbolic or hard links pointing outside the target, and device or other special files
    reject the whole archive. The archive is unpacked into a temporary folder next to
    ``target`` (deleted on any error, so nothing of a rejected archive remains), a completion
    marker (``COMPLETE_MARKER``) is written into it, and the folder is renamed to ``target``
    (replacing an incomplete earlier attempt).

    Parameters
    ----------
    archive : path-like
        The archive file.
    target : path-like
        Folder to create; its parent must be writable.

    Returns
    -------
    Path
        ``target``.

    Raises
    ------
    UnsafeArchiveError
        A member would escape the target or is a special file (nothing is left behind).
    ValueError
        The file is neither a zip nor a tar archive.

    Notes
    -----
    Notebook: 00_welcome.
    """
    archive, target = Path(archive), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)

    is_zip = zipfile.is_zipfile(archive)
    if not is_zip and not tarfile.is_tarfile(archive):
        raise ValueError(
            f"{archive} is neither a zip nor a tar archive: delete it and download it again."
        )
    if is_zip:
        with zipfile.ZipFile(archive) as zf:
            needed = _check_zip(zf, archive)  # the central directory lists everything cheaply
            _ensure_space(target.parent, needed, archive)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        if is_zip:
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    if not stat.S_ISLNK(info.external_attr >> 16):
                        zf.extract(info, tmp)  # links were checked; one carries no data
        else:
            with tarfile.open(archive, "r:*") as tar:
                members = _checked_members(tar, archive)
                if hasattr(tarfile, "data_filter"):
                    # The stdlib filter repeats the checks and also drops set-uid bits.
                    tar.extractall(tmp, members=members, filter="data")
                else:  # Python < 3.11.4
                    tar.extractall(tmp, members=members)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if err.errno == errno.ENOSPC:
            raise OSError(
                errno.ENOSPC,
                f"The disk filled up while extracting {archive.name} into {target.parent}: free some "
                "space or point COURSE_DATA at a larger disk",
            ) from err
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    marker = {
        "archive": archive.name,
        "archive_bytes": archive.stat().st_size,
        "extracted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (tmp / COMPLETE_MARKER).write_text(json.dumps(marker, indent=1))
    if target.exists():
        shutil.rmtree(target)  # an earlier, incomplete extraction
    os.replace(tmp, target)
    return target


# --------------------------------------------------------------------------- fetch


@contextlib.contextmanager
def _exclusive(lock_path: Path, label: str) -> Iterator[None]:
    """Hold an advisory lock so two processes never write the same ``.part`` or folder."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; concurrent fetches are the user's call
        yield
        return
    with open(lock_path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"{label}: another process is downloading or extracting it; waiting for it to finish.")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fetch(
    name_or_info: str | DatasetInfo,
    cache_root: str | os.PathLike[str] | None = None,
    *,
    progress: bool = True,
    timeout: float = 10.0,
    allow_unverified: bool = False,
    keep_archive: bool = False,
    mirrors: Sequence[str] = (),
) -> Path:
    """Return the extracted root of a real dataset, downloading and extracting it at most once.

    Looks, in order, for: a complete extraction in ``<cache>/<name>/`` (returned at once, no
    network); an archive already at ``<cache>/downloads/<archive>`` (e.g. downloaded by hand;
    verified, then extracted); else downloads from the registry's mirrors.

    Parameters
    ----------
    name_or_info : str or DatasetInfo
        Registry name (``course_lib.data.registry.DATASETS``) or an entry.
    cache_root : path-like, optional
        Cache folder; default ``COURSE_DATA`` or ``<repo>/data/cache``.
    progress : bool
        Show a download progress bar.
    timeout : float
        Connect/read timeout in seconds per request.
    allow_unverified : bool
        Accept an archive for which no checksum is known.
    keep_archive : bool
        Keep the downloaded archive after extraction (it is deleted by default to save space).
    mirrors : sequence of str
        Extra URLs of the same archive, tried before the registry's (it is verified all the same).

    Returns
    -------
    Path
        ``<cache>/<name>/<info.root>``, the folder the dataset's index function reads.

    Raises
    ------
    DatasetUnavailable
        The dataset cannot be obtained; the message lists the URLs tried and the alternatives.
    FixtureMirrorError
        ``COURSE_FIXTURE_MIRROR`` is set but its server cannot be read or lacks this dataset.
    ValueError
        ``COURSE_FIXTURE_MIRROR`` is not an http URL on 127.0.0.1 / localhost.

    Notes
    -----
    With ``COURSE_FIXTURE_MIRROR`` set (the course's tests only, see
    ``registry.fixture_mirror``) the archive, its size and its checksum come from that local
    miniature-fixture server instead of the registry, ``mirrors`` is ignored, one line says so,
    and the dataset is extracted under ``<cache>/miniature/<build>/``.

    Notebook: 00_welcome.
    """
    info = get_info(name_or_info)
    root_dir = _cache_root(cache_root)
    fixture_url = fixture_mirror()
    if fixture_url is not None:
        info, root_dir = _use_fixture_mirror(info, fixture_url, root_dir, timeout)
    elif mirrors:
        info = dataclasses.replace(info, mirrors=tuple(mirrors) + info.mirrors)
    extracted = root_dir / info.name
    data_root = extracted / info.root
    if (extracted / COMPLETE_MARKER).is_file() and (data_root / info.marker).exists():
        return data_root.resolve()

    archive = root_dir / "downloads" / info.archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(archive.with_name(archive.name + ".lock"), info.name):
        # Another process may have finished the same dataset while this one waited.
        if (extracted / COMPLETE_MARKER).is_file() and (data_root / info.marker).exists():
            return data_root.resolve()
        for stale in root_dir.glob(f".{info.name}.*.tmp"):  # left by an interrupted extraction
            shutil.rmtree(stale, ignore_errors=True)
        download_file(
            info.mirrors, archive, info.sha256, info.size, progress=progress, timeout=timeout,
            md5=info.md5, allow_unverified=allow_unverified, label=info.name,
            offline_fallback=info.offline_fallback,
        )
        extract_archive(archive, extracted)
    if not (data_root / info.marker).exists():
        raise DatasetUnavailable(
            f"Dataset {info.name!r}: {archive} was extracted to {extracted} but "
            f"{info.root}/{info.marker} is missing (expected layout: {info.layout}). The archive "
            f"may be a different version: delete {extracted} and {archive} and try again, or use "
            f"the offline set {info.offline_fallback!r} (`{_PREPARE_HINT}`).",
            dataset=info.name, manual_path=archive,
        )
    if not keep_archive:
        archive.unlink(missing_ok=True)
    return data_root.resolve()


def _use_fixture_mirror(info: DatasetInfo, base_url: str, root_dir: Path, timeout: float
                        ) -> tuple[DatasetInfo, Path]:
    """The entry as the miniature-fixture server at ``base_url`` publishes it, and its cache folder.

    Mirrors, size and checksum are replaced by the fixture's; the extraction goes to
    ``<cache>/miniature/<build>/`` so a miniature can never pass for the real dataset in the cache
    (and a rebuilt fixture gets a fresh folder). One line says so, once per dataset and process.
    """
    index_url = base_url + MINIATURE_INDEX
    try:
        with urllib.request.urlopen(index_url, timeout=timeout) as response:
            index = json.loads(response.read().decode("utf-8"))
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise FixtureMirrorError(
            f"{FIXTURE_MIRROR_ENV}={base_url} is set but {index_url} cannot be read ({err}). Start the "
            f"server (python -m course_lib.data miniature --serve) or unset {FIXTURE_MIRROR_ENV} to use "
            "the real datasets."
        ) from err
    if not isinstance(index, dict) or index.get("format") != MINIATURE_FORMAT:
        raise FixtureMirrorError(f"{index_url} is not a miniature-fixture index (format {MINIATURE_FORMAT!r})")
    entry = index.get("datasets", {}).get(info.name)
    if entry is None:
        raise FixtureMirrorError(
            f"the miniature-fixture server at {base_url} has no fixture for {info.name!r} (it has "
            f"{sorted(index.get('datasets', {}))}): rebuild it with python -m course_lib.data miniature"
        )
    fixture = dataclasses.replace(
        info,
        title=f"{info.title} [miniature test fixture]",
        mirrors=(base_url + urllib.parse.quote(entry["archive"]),),
        archive=entry["archive"],
        size=int(entry["size"]),
        sha256=entry.get("sha256"),
        md5=entry.get("md5"),
    )
    if info.name not in _announced_fixtures:
        _announced_fixtures.add(info.name)
        print(f"{FIXTURE_MIRROR_ENV} is set: {info.name} comes from the miniature test fixture at "
              f"{base_url}, not from the real dataset", flush=True)
    return fixture, root_dir / "miniature" / str(index["build"])


def describe_datasets(cache_root: str | os.PathLike[str] | None = None) -> list[dict]:
    """Summarise every registry entry for ``python -m course_lib.data list``.

    Parameters
    ----------
    cache_root : path-like, optional
        Cache folder (default: ``course_lib.runtime.data_root()``).

    Returns
    -------
    list of dict
        One dict per dataset with ``name``, ``title``, ``task``, ``size`` (archive bytes or
        None), ``license``, ``offline_fallback`` and ``status``: ``"present"`` (extracted in the
        cache), ``"downloadable"`` (mirrors and a checksum are known) or ``"offline-only"`` (no
        checksum is known, so only the offline stand-in is used unless the caller accepts an
        unverified download).

    Notes
    -----
    Notebook: 00_welcome.
    """
    rows = []
    for info in DATASETS.values():
        if is_present(info, cache_root):
            status = "present"
        elif info.verified and info.mirrors:
            status = "downloadable"
        else:
            status = "offline-only"
        rows.append(
            {
                "name": info.name,
                "title": info.title,
                "task": info.task,
                "size": info.size,
                "license": info.license,
                "offline_fallback": info.offline_fallback,
                "status": status,
            }
        )
    return rows
