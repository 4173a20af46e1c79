"""One rule for every output path a command writes, checked before the work starts.

* A folder (``--out DIR``, ``--pca-dir``, ``--debug-dir``) is created with its missing parents; an
  existing *file* of that name is an error.
* A file (``--report``, ``--summary-json``, a manifest, a map) gets its missing parent folders
  created; an existing *folder* of that name is an error, and so is an existing file when the
  command must not overwrite it.
* A bag follows rosbag2's convention: ``--out NAME`` names the bag *folder* (``NAME/NAME.mcap`` and
  ``metadata.yaml`` inside); a ``.mcap`` / ``.db3`` suffix picks the storage and is dropped from the
  folder's name. An existing bag is never overwritten.

Errors are :class:`CliError` lines naming the option and the path, so nothing is computed (and
nothing already saved is touched) when an output could not be written.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..io.errors import BagError
from ..output.bag_writer import bag_path_and_storage
from .errors import CliError


def _make_parents(path: Path, option: str) -> None:
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise CliError(f"{option} {path}: {parent} is a file, not a folder")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"{option} {path}: cannot create folder {parent}: {exc.strerror or exc}") from None
    if not os.access(parent, os.W_OK):
        raise CliError(f"{option} {path}: folder {parent} is not writable")


def output_folder(path: str | Path, option: str) -> Path:
    """Create the folder (and its parents); refuse a file in the way."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CliError(f"{option} {path}: is a file, not a folder")
    _make_parents(path, option)
    try:
        path.mkdir(exist_ok=True)
    except OSError as exc:
        raise CliError(f"{option} {path}: cannot create the folder: {exc.strerror or exc}") from None
    return path


def output_file(path: str | Path, option: str, overwrite: bool = True) -> Path:
    """Make the parent folders; refuse a folder in the way (or an existing file unless ``overwrite``)."""
    path = Path(path)
    if path.is_dir():
        raise CliError(f"{option} {path}: is a folder; give a file name")
    if path.exists() and not overwrite:
        raise CliError(f"{option} {path}: already exists; nothing was overwritten (choose another path)")
    _make_parents(path, option)
    return path


def output_bag(path: str | Path, option: str, storage: str | None = None) -> tuple[Path, str]:
    """(bag folder, storage) for a new bag; the folder must not exist yet."""
    try:
        folder, storage = bag_path_and_storage(path, storage)
    except BagError as exc:
        raise CliError(f"{option}: {exc}") from None
    if folder.exists():
        raise CliError(f"{option} {path}: bag folder {folder} already exists; nothing was overwritten "
                       "(choose another name or remove it)")
    _make_parents(folder, option)
    return folder, storage
