"""A full disk or a read-only folder: one clear error naming the file, never a ``Bus error``.

A write into a memory map of a sparse file on a full disk kills the process with SIGBUS (the
issue: ``Bus error``, exit status 135, no message, while preparing betas). Files mapped for
writing are reserved first (``brainalign.utils.disk.create_memmap``). The full disk is
simulated by making the reservation fail with ``ENOSPC``; where this process may mount a tmpfs
(root in a container), a real 1 MiB file system is filled too, and a read-only one written to.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import brainalign.datasets.virtual as virtual
from brainalign.datasets import make_virtual_nsd, prepare_nsd
from brainalign.datasets.nsd import prepare_nsd_disk_bytes
from brainalign.datasets.virtual import virtual_nsd_disk_bytes
from brainalign.errors import BrainAlignError, WriteError
from brainalign.utils import disk
from tests.faults.conftest import TINY


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# ---------------------------------------------------------------------------- reservation
def test_create_memmap_reserves_every_block(tmp_path):
    m = disk.create_memmap(tmp_path / "a.npy", (64, 1024), np.float32, hint="x")
    m[:] = 1.0
    m.flush()
    del m
    st = os.stat(tmp_path / "a.npy")
    assert st.st_blocks * 512 >= 64 * 1024 * 4  # allocated, not sparse
    assert np.load(tmp_path / "a.npy").sum() == 64 * 1024


@pytest.mark.parametrize("how", ["missing", "unsupported"])
def test_create_memmap_without_posix_fallocate_writes_zeros(tmp_path, monkeypatch, how):
    """Where posix_fallocate does not exist (macOS, Windows) or the file system refuses it,
    zeros are written over the data: the blocks are allocated all the same."""
    if how == "missing":
        monkeypatch.delattr(os, "posix_fallocate", raising=False)
    else:

        def unsupported(*args):
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

        monkeypatch.setattr(os, "posix_fallocate", unsupported)
    m = disk.create_memmap(tmp_path / "a.npy", (32, 1000), np.float64, hint="x")
    assert m.shape == (32, 1000) and not m.any()
    del m
    assert os.stat(tmp_path / "a.npy").st_blocks * 512 >= 32 * 1000 * 8
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), 0.0)


def test_create_memmap_on_a_full_disk_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "posix_fallocate", _no_space)
    path = tmp_path / "big.npy"
    with pytest.raises(WriteError) as info:
        disk.create_memmap(path, (1000, 1000), np.float32, hint="choose another folder")
    msg = str(info.value)
    assert str(path) in msg and "not enough disk space" in msg
    assert "3.8 MiB" in msg and "free" in msg and "choose another folder" in msg
    assert isinstance(info.value, OSError)  # callers catching OSError still do
    assert not path.exists()


# ------------------------------------------------------------------------ NSD preparation
def test_full_disk_while_preparing_betas_is_a_clear_error(nsd_copy, tmp_path, monkeypatch):
    """Issue case 6: a full disk during preparation is one WriteError naming the cache file,
    the bytes needed and free, and BRAINALIGN_CACHE; the next preparation (with room) works."""
    cache = tmp_path / "cache"
    need = prepare_nsd_disk_bytes(nsd_copy, 1, cache_dir=cache)
    with monkeypatch.context() as m:
        m.setattr(os, "posix_fallocate", _no_space)
        with pytest.raises(WriteError) as info:
            prepare_nsd(nsd_copy, 1, cache_dir=cache)
    msg = str(info.value)
    assert "mean.npy" in msg and "not enough disk space" in msg
    assert "BRAINALIGN_CACHE" in msg and "free" in msg
    assert not list(cache.rglob("*.npy"))  # no half-made map left behind
    prepared = prepare_nsd(nsd_copy, 1, cache_dir=cache)
    betas = np.load(prepared.betas_path, mmap_mode="r")
    assert betas.nbytes <= need  # the estimate covers the result
    assert prepare_nsd_disk_bytes(nsd_copy, 1, cache_dir=cache) == 0  # a valid cache


def test_full_disk_on_an_ordinary_write_of_the_preparation(nsd_copy, tmp_path, monkeypatch):
    """The preparation's small files (undo records) on a full disk: the same kind of error."""
    import brainalign.datasets.nsd as nsd

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "undo_values.npy"))

    monkeypatch.setattr(nsd, "_save_session_record", full)
    with pytest.raises(WriteError, match="not enough disk space.*BRAINALIGN_CACHE"):
        prepare_nsd(nsd_copy, 1, cache_dir=tmp_path / "cache")


# ------------------------------------------------------------------------ virtual NSD build
def test_full_disk_during_the_virtual_nsd_build(tmp_path, monkeypatch):
    """A full disk halfway through the build: a WriteError naming the file, not a raw OSError
    traceback; the partial folder is removed and root is not created."""
    original = virtual.write_mgh
    calls = []

    def write_mgh(path, *args, **kwargs):
        calls.append(path)
        if len(calls) > 3:  # a few files in, as a disk fills
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(virtual, "write_mgh", write_mgh)
    root = tmp_path / "nsd"
    with pytest.raises(WriteError) as info:
        make_virtual_nsd(root, **TINY)
    msg = str(info.value)
    assert str(calls[-1]) in msg and "not enough disk space" in msg and "free" in msg
    assert "virtual_nsd_disk_bytes" in msg
    assert not root.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no partial folder, no lock


def test_read_only_folder_for_the_virtual_nsd(tmp_path, monkeypatch):
    """A folder that cannot be written (chmod does not bind root, so the refusal is simulated
    at the first file the build creates): a WriteError naming the folder, nothing left."""

    def refused(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(virtual, "write_mat", refused)
    root = tmp_path / "nsd"
    with pytest.raises(WriteError) as info:
        make_virtual_nsd(root, **TINY)
    assert "cannot write" in str(info.value) and str(tmp_path) in str(info.value)
    assert not root.exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_virtual_nsd_disk_bytes_bounds_what_is_written(tiny_nsd):
    need = virtual_nsd_disk_bytes(**TINY)
    written = sum(p.stat().st_size for p in Path(tiny_nsd).rglob("*") if p.is_file())
    assert written <= need < 20 * written + (64 << 20)
    with pytest.raises(BrainAlignError, match="n_subjects"):
        virtual_nsd_disk_bytes(n_subjects=0)


# ---------------------------------------------------------- a real small file system (tmpfs)
def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or sys.platform != "linux":
        return False
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    return res.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (skipped where this process may not mount one)."""
    where = tmp_path / "small"
    if not _mount_tmpfs(where, "size=1m"):
        pytest.skip("cannot mount a tmpfs here (needs root on Linux)")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def read_only_disk(tmp_path):
    """A read-only tmpfs (EROFS binds root too; skipped where it cannot be mounted)."""
    where = tmp_path / "ro"
    if not _mount_tmpfs(where, "ro,size=1m"):
        pytest.skip("cannot mount a tmpfs here (needs root on Linux)")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_really_full_disk_while_preparing_is_no_bus_error(tiny_nsd, small_disk):
    """The issue's case on a real 1 MiB file system, in a child process (a SIGBUS would kill
    pytest): exit status 2 and one line naming the file, no ``Bus error``."""
    code = textwrap.dedent(
        f"""
        import sys
        from brainalign.datasets import prepare_nsd
        from brainalign.errors import BrainAlignError
        try:
            prepare_nsd({str(tiny_nsd)!r}, 1, cache_dir={str(small_disk)!r})
        except BrainAlignError as exc:
            print(exc)
            sys.exit(2)
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    assert "mean.npy" in res.stdout and "not enough disk space" in res.stdout
    assert not list(small_disk.rglob("*.npy"))


def test_virtual_nsd_on_a_really_full_disk(small_disk):
    with pytest.raises(WriteError, match="not enough disk space|disk is full"):
        make_virtual_nsd(small_disk / "nsd", **TINY)
    assert [p.name for p in small_disk.iterdir()] == []


def test_virtual_nsd_into_a_read_only_file_system(read_only_disk):
    with pytest.raises(WriteError, match="cannot write"):
        make_virtual_nsd(read_only_disk / "nsd", **TINY)


def test_preparing_into_a_read_only_cache(tiny_nsd, read_only_disk):
    with pytest.raises(WriteError, match="cannot write.*"):
        prepare_nsd(tiny_nsd, 1, cache_dir=read_only_disk / "cache")


def test_resuming_a_sparse_file_allocates_it_first(tmp_path, monkeypatch):
    """A work file left sparse (by an older brainalign, or copied sparsely) is reopened for
    writing only once its blocks are allocated; what it holds is kept."""
    path = tmp_path / "mean.npy"
    m = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(256, 1024))
    m[:2] = 7.0  # a resumed file holds work already done; the rest is a hole
    m.flush()
    del m
    with monkeypatch.context() as mp:
        mp.setattr(os, "posix_fallocate", _no_space)
        with pytest.raises(WriteError, match="mean.npy: not enough disk space"):
            disk.open_memmap_reserved(path, hint="x")
    m = disk.open_memmap_reserved(path, hint="x")
    assert (m[:2] == 7.0).all() and not m[2:].any()
    del m
    assert os.stat(path).st_blocks * 512 >= 256 * 1024 * 4
