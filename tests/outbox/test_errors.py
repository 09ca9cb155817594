"""Failures the caller must see: disk full, read-only, corrupt, locked. Each raises
OutboxError naming the cause and the file, writes nothing, keeps what was committed, and
the store works again once the cause is gone. Faults are real: a full tmpfs, a file size
limit, an immutable file, a read-only mount, garbage in the file, a lock held by another
process."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sendoff.outbox import NewMessage, OutboxError, Store
from sendoff.outbox import store as store_module

from .conftest import message, worker

IS_ROOT = os.geteuid() == 0


def _run(*cmd: str) -> bool:
    return subprocess.run(cmd, capture_output=True).returncode == 0


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (needs root: skipped otherwise; the file-size-limit test covers it)."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    if not IS_ROOT or not _run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        if not _run("umount", str(mnt)):
            _run("umount", "-l", str(mnt))


def _fill(directory: Path) -> Path:
    """Write a file until the file system is full; return it (delete it to free space)."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    errors: list[int | None] = []
    for size in (65536, 512):  # big blocks, then the last small ones
        try:
            while True:
                os.write(fd, b"\0" * size)
        except OSError as exc:
            errors.append(exc.errno)
    assert errors == [28, 28]  # ENOSPC
    os.close(fd)
    return filler


def _add_until_error(store: Store, msg: NewMessage, acked: list[str], most: int) -> OutboxError:
    """Add ``msg`` until the store refuses; the ids it acknowledged go to ``acked``."""
    for _ in range(most):
        try:
            acked.append(store.add(msg).id)
        except OutboxError as exc:
            return exc
    raise AssertionError(f"{most} adds and no error")


def _assert_error(exc: OutboxError, cause: str, words: str, path: Path | str) -> None:
    assert exc.cause == cause
    assert words in str(exc)
    assert str(path) in str(exc)
    assert exc.path == str(path)


def test_disk_full_on_a_small_tmpfs(small_tmpfs: Path) -> None:
    path = small_tmpfs / "outbox.sqlite3"
    store = Store(path)
    try:
        acked = [store.add(message(i)).id for i in range(20)]
        filler = _fill(small_tmpfs)
        # the WAL has some room left: fill it with big messages
        exc = _add_until_error(store, message(1, wire=b"x" * 20_000), acked, 200)
        _assert_error(exc, "disk_full", "disk full", path)
        assert store.stats()["total"] == len(acked)  # nothing half-written
        assert all(store.status(i) is not None for i in acked)  # nothing lost
        with pytest.raises(OutboxError, match="disk full"):
            store.add(message(0, wire=b"x" * 20_000))  # still full: still an error
        filler.unlink()  # space freed: the same store works again
        acked.append(store.add(message(999, wire=b"x" * 20_000)).id)
        assert store.stats()["total"] == len(acked)
    finally:
        store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == len(acked)
    conn.close()


def test_file_size_limit_reports_disk_full(db_path: Path) -> None:
    """RLIMIT_FSIZE in a subprocess (SIGXFSZ ignored): writes fail with EFBIG."""
    proc = worker("fill_to_limit", str(db_path), "200000", stdout=-1, stderr=-1)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    acked = [line.split()[1] for line in lines if line.startswith("ok ")]
    errors = [line for line in lines if line.startswith("error ")]
    after = [line.split()[1] for line in lines if line.startswith("after ")]
    assert acked
    assert len(errors) == 1
    assert errors[0].startswith("error disk_full ")
    assert "disk full" in errors[0]
    assert str(db_path) in errors[0]
    assert len(after) == 1  # the limit lifted, the same store stored the next message
    with Store(db_path) as s:
        assert all(s.status(i) is not None for i in [*acked, *after])
        assert s.stats()["total"] == 1 + len(acked) + 1  # the first message, then these


def test_read_only_file(tmp_path: Path, make_store: Callable[..., Store]) -> None:
    """An immutable file (chattr +i: even root cannot write it)."""
    path = tmp_path / "outbox.sqlite3"
    s = make_store(path)
    acked = [s.add(message(i)).id for i in range(3)]
    s.close()
    if not IS_ROOT or not _run("chattr", "+i", str(path)):
        pytest.skip("chattr +i needs root and a file system that supports it")
    try:
        ro = make_store(path)
        assert all(ro.status(i) is not None for i in acked)  # reading still works
        with pytest.raises(OutboxError) as info:
            ro.add(message(9))
        _assert_error(info.value, "read_only", "read-only", path)
        ro.close()
    finally:
        _run("chattr", "-i", str(path))
    again = make_store(path)
    assert all(again.status(i) is not None for i in acked)
    again.add(message(10))
    assert again.stats()["total"] == 4


def test_read_only_mount(tmp_path: Path, make_store: Callable[..., Store]) -> None:
    """The directory on a read-only bind mount: the WAL's files cannot even be created."""
    src, ro_dir = tmp_path / "rw", tmp_path / "ro"
    src.mkdir()
    ro_dir.mkdir()
    s = make_store(src / "outbox.sqlite3")
    acked = [s.add(message(i)).id for i in range(3)]
    s.close()
    if not IS_ROOT or not _run("mount", "--bind", str(src), str(ro_dir)):
        pytest.skip("bind mounts need root")
    try:
        assert _run("mount", "-o", "remount,ro,bind", str(ro_dir))
        path = ro_dir / "outbox.sqlite3"
        with pytest.raises(OutboxError) as info:
            make_store(path).add(message(9))
        _assert_error(info.value, "read_only", "read-only", path)
    finally:
        if not _run("umount", str(ro_dir)):
            _run("umount", "-l", str(ro_dir))
    again = make_store(src / "outbox.sqlite3")
    assert all(again.status(i) is not None for i in acked)
    again.add(message(10))


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user can reach (pytest's own tmp dirs are private to root)."""
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="sendoff-outbox-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_no_write_permission(open_dir: Path, make_store: Callable[..., Store]) -> None:
    """Another user's outbox: readable, but neither it nor its directory is writable."""
    path = open_dir / "outbox.sqlite3"
    s = make_store(path)
    acked = [s.add(message(i)).id for i in range(3)]
    s.close()
    path.chmod(0o644)
    if IS_ROOT:  # root may write anything: try as nobody
        proc = worker("add_as", str(path), "65534", stdout=-1, stderr=-1)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        (line,) = out.splitlines()
        assert line.startswith("error read_only ")
        assert "read-only" in line
        assert "not writable" in line
        assert str(path) in line
    else:  # pragma: no cover - the tests usually run as root here
        open_dir.chmod(0o555)
        path.chmod(0o444)
        try:
            with pytest.raises(OutboxError) as info:
                make_store(path).add(message(9))
            _assert_error(info.value, "read_only", "read-only", path)
        finally:
            open_dir.chmod(0o755)
            path.chmod(0o644)
    again = make_store(path)
    assert all(again.status(i) is not None for i in acked)
    assert again.stats()["total"] == 3


def test_garbage_over_the_header_is_reported_as_corrupt(db_path: Path) -> None:
    with Store(db_path) as s:
        s.add(message(1))
    backup = db_path.with_suffix(".good")
    shutil.copy(db_path, backup)
    with open(db_path, "r+b") as f:
        f.write(b"this is not an sqlite file, it is garbage" * 3)
    with pytest.raises(OutboxError) as info:
        Store(db_path)
    _assert_error(info.value, "corrupt", "corrupt", db_path)
    assert "not a database" in str(info.value)
    shutil.copy(backup, db_path)  # restored from a copy: readable again
    with Store(db_path) as s:
        assert s.stats()["total"] == 1


def test_garbage_inside_the_file_is_reported_as_corrupt(db_path: Path) -> None:
    with Store(db_path) as s:
        ids = [s.add(message(i, wire=os.urandom(3000))).id for i in range(200)]
    with open(db_path, "r+b") as f:
        f.seek(4096 * 3)
        f.write(os.urandom(4096 * 40))
    with Store(db_path) as s:  # the header is intact: it opens, then reading fails

        def read_everything() -> None:
            for i in ids:
                s.status(i)
            s.list(limit=1000)

        with pytest.raises(OutboxError) as info:
            read_everything()
        _assert_error(info.value, "corrupt", "malformed", db_path)
        with pytest.raises(OutboxError, match="corrupt"):
            s.add(message(1, wire=os.urandom(3000)))


def test_a_lock_held_past_busy_timeout(db_path: Path, make_store: Callable[..., Store]) -> None:
    store = make_store(busy_timeout=0.2)
    acked = [store.add(message(i)).id for i in range(3)]
    holder = worker("hold_lock", str(db_path), stdin=-1, stdout=-1)
    assert holder.stdout is not None
    assert holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutboxError) as info:
            store.add(message(9))
        _assert_error(info.value, "locked", "locked", db_path)
        assert "busy_timeout (0.2 s)" in str(info.value)
        assert all(store.status(i) is not None for i in acked)  # readers are not blocked
        with pytest.raises(OutboxError, match="locked"):
            store.claim("r", 10, 30.0)
    finally:
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.wait(timeout=30) == 0
    store.add(message(10))
    assert store.stats()["total"] == 4


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "dir" / "outbox.sqlite3"
    with pytest.raises(OutboxError) as info:
        Store(path)
    _assert_error(info.value, "cannot_open", "does not exist", path)


def test_a_foreign_database_is_refused(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(OutboxError) as info:
        Store(db_path)
    _assert_error(info.value, "not_an_outbox", "not a sendoff outbox", db_path)
    conn = sqlite3.connect(db_path)  # and it was left alone
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert tables == {"users"}


@pytest.fixture
def fresh_sqlite_check() -> Iterator[None]:
    """The SQLite check runs once per process: these tests fake another library, so it
    must run again for them, and once more after them."""
    store_module._sqlite_problem.cache_clear()
    yield
    store_module._sqlite_problem.cache_clear()


def test_an_sqlite_too_old_for_the_store_is_refused_at_open(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_sqlite_check: None
) -> None:
    """A Python linked to an old libsqlite3 (3.31 on Ubuntu 20.04) could store messages but
    never claim one (``UPDATE ... FROM`` is 3.33): the outbox says so when it opens, before
    a message is stored, and creates no file."""
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.31.1")
    with pytest.raises(OutboxError) as info:
        Store(db_path)
    _assert_error(info.value, "unsupported_sqlite", "SQLite 3.31.1 is too old", db_path)
    assert "3.33.0 or newer" in str(info.value)
    assert not db_path.exists()
    monkeypatch.undo()
    store_module._sqlite_problem.cache_clear()
    Store(db_path).close()  # this machine's SQLite is new enough


def test_an_sqlite_without_json_functions_is_refused_at_open(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_sqlite_check: None
) -> None:
    """The store reads and writes batches through SQLite's JSON functions: a library built
    without them is named at open, and no file is created. (The probe is made to call a
    function this SQLite lacks, as one without JSON1 would lack json_each.)"""
    monkeypatch.setattr(store_module, "_JSON_PROBE", "SELECT no_such_function(1)")
    with pytest.raises(OutboxError) as info:
        Store(db_path)
    _assert_error(info.value, "unsupported_sqlite", "built without its JSON functions", db_path)
    assert not db_path.exists()


def test_errors_name_no_url(small_tmpfs: Path) -> None:
    """The URL (with its credentials) never appears in an error."""
    store = Store(small_tmpfs / "o.sqlite3")
    try:
        _fill(small_tmpfs)
        msg = NewMessage("POST", "https://user:pw@h.example/x?token=SECRET", "https://h.example:443",
                         b"x" * 50_000, 5.0)  # fmt: skip
        exc = _add_until_error(store, msg, [], 50)
        assert exc.cause == "disk_full"
        assert "SECRET" not in str(exc)
        assert "pw@" not in str(exc)
    finally:
        store.close()
