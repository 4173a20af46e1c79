"""Where the package's shipped files (models/, config/, launch/) are on this machine."""
from __future__ import annotations

import sys
from pathlib import Path

PACKAGE = "dejavu_ros"
DEFAULT_MODEL_NAME = "dvf_default.safetensors"


def share_dir() -> Path:
    """The package's share folder: colcon install, pip install or the source checkout."""
    try:  # a ROS install knows best
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except Exception:  # noqa: BLE001 - not a ROS environment, or package not in the index
        pass
    source_root = Path(__file__).resolve().parent.parent
    if (source_root / "package.xml").is_file():  # editable install / running from the checkout
        return source_root
    return Path(sys.prefix) / "share" / PACKAGE


def share_path(*parts: str) -> Path:
    return share_dir().joinpath(*parts)


def models_dir() -> Path:
    return share_path("models")


def default_model_path() -> Path:
    return models_dir() / DEFAULT_MODEL_NAME


def shipped_name(path: str | Path) -> str:
    """``path`` as a report should record it: ``models/NAME`` for a file shipped with the package (the
    same on every install), else the path as given."""
    path = Path(path)
    for inside, folder in ((path.absolute(), models_dir().absolute()), (path.resolve(), models_dir().resolve())):
        try:  # as named first: an install of symlinks resolves into the source tree
            return str(Path("models") / inside.relative_to(folder))
        except ValueError:
            continue
    return str(path)
