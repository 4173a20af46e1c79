"""DVF weights on disk: our safetensors format, and import of the authors' checkpoints.

Our format is one ``.safetensors`` file whose header metadata carries the model config, a
format version and a training summary (all JSON), so the file alone rebuilds the network.
Nothing is ever unpickled: the authors' ``.pt`` files go through ``torch.load(weights_only=True)``,
which refuses any object that is not a tensor or a plain container.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import DejavuError
from .dvf import DVF, DVFConfig

FORMAT_NAME = "dejavu_ros.dvf"
FORMAT_VERSION = 1


class CheckpointError(DejavuError):
    """A weights file that cannot be used; the message names the file and the problem."""


def fingerprint(model: DVF) -> str:
    """Hash of the weights and the model config: a map remembers the model that built it."""
    digest = hashlib.sha256(json.dumps(model.cfg.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()[:16]


def save_checkpoint(model: DVF, path: str | Path, training: dict[str, Any] | None = None) -> Path:
    """Write weights + metadata atomically (a crash never leaves a half-written file in place)."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "model_config": json.dumps(model.cfg.to_dict()),
        "training": json.dumps(training or {}),
    }
    return save_safetensors_atomically(tensors, path, metadata)


def save_safetensors_atomically(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str]) -> Path:
    """Write a safetensors file through a temporary file in the same folder and a rename, readable by
    everyone: a crash or a full disk never leaves a half-written file where the old one was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; weights are meant to be shared and installed
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Model config, format version and training summary of a checkpoint, without the weights."""
    path = Path(path)
    meta = _open(path, lambda f: f.metadata() or {})
    if meta.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path}: not a dejavu_ros DVF checkpoint (format tag "
                              f"{meta.get('format')!r}); authors' .pt files need 'dejavu-ros import-checkpoint'")
    try:
        version = int(meta.get("format_version", "0"))
        config = json.loads(meta["model_config"])
        training = json.loads(meta.get("training", "{}"))
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: damaged checkpoint metadata ({exc})") from None
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version} is newer than this "
                              f"dejavu_ros supports ({FORMAT_VERSION})")
    return {"format_version": version, "model_config": config, "training": training}


def load_checkpoint(path: str | Path, expect_config: DVFConfig | None = None) -> tuple[DVF, dict[str, Any]]:
    """Rebuild the network stored in ``path``; check every tensor's name and shape."""
    path = Path(path)
    meta = read_metadata(path)
    try:
        cfg = DVFConfig.from_dict(meta["model_config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid model config in checkpoint ({exc})") from None
    if expect_config is not None and expect_config != cfg:
        raise CheckpointError(f"{path}: model config {cfg} differs from the expected {expect_config}")
    tensors = _open(path, lambda f: {k: f.get_tensor(k) for k in f.keys()})
    model = DVF(cfg)
    _load_exact(model, tensors, path)
    return model, meta


def _open(path: Path, read):
    if not path.is_file():
        raise CheckpointError(f"model file not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return read(f)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file (truncated or corrupt: {exc})") from None


def _load_exact(model: DVF, tensors: dict[str, torch.Tensor], path: Path | str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match the model config: "
                              f"missing {missing[:5]}{'…' if len(missing) > 5 else ''}, "
                              f"unexpected {unexpected[:5]}{'…' if len(unexpected) > 5 else ''}")
    for name, ref in expected.items():
        if tuple(tensors[name].shape) != tuple(ref.shape):
            raise CheckpointError(f"{path}: tensor {name} has shape {tuple(tensors[name].shape)}, "
                                  f"the model config needs {tuple(ref.shape)}")
        if not torch.isfinite(tensors[name].float()).all():
            raise CheckpointError(f"{path}: tensor {name} holds NaN or Inf")
    model.load_state_dict(tensors, strict=True)


# --- the authors' checkpoint layout --------------------------------------------------------------

#: authors' key pattern → ours (ConvBlocks wrap their conv/bn in ``_layers``)
_AUTHOR_RULES = [
    (re.compile(r"^first_conv\.block(\d+)\._layers\.(.+)$"), lambda m: f"stem.{int(m[1]) - 1}.{m[2]}"),
    (re.compile(r"^layer(\d)\.block(\d+)\.block1\._layers\.(.+)$"),
     lambda m: f"layer{m[1]}.{int(m[2]) - 1}.conv1.{m[3]}"),
    (re.compile(r"^layer(\d)\.block(\d+)\.block2\._layers\.(.+)$"),
     lambda m: f"layer{m[1]}.{int(m[2]) - 1}.conv2.{m[3]}"),
    (re.compile(r"^layer(\d)\.block(\d+)\.downsample\._layers\.(.+)$"),
     lambda m: f"layer{m[1]}.{int(m[2]) - 1}.shortcut.{m[3]}"),
    # branch1..4 pool 32, 16, 8, 4 — the same order as DVF.spp
    (re.compile(r"^branch(\d)\.block\._layers\.(.+)$"), lambda m: f"spp.{int(m[1]) - 1}.{m[2]}"),
    (re.compile(r"^last_conv\.block1\._layers\.(.+)$"), lambda m: f"fuse.{m[1]}"),
    (re.compile(r"^last_conv\.conv1\.(.+)$"), lambda m: f"reduce.{m[1]}"),
    (re.compile(r"^final\.(.+)$"), lambda m: f"head.{m[1]}"),
]


def _looks_like_torch_save(path: Path) -> bool:
    """torch.save writes a zip archive (or, in old versions, a pickle starting with 0x80)."""
    import zipfile

    with path.open("rb") as handle:
        first = handle.read(1)
    return zipfile.is_zipfile(path) or first == b"\x80"


def _refusal(text: str) -> str:
    """Why torch's weights-only loader refused a file, without its advice to disable the safety check."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    unsupported = re.search(r"Unsupported global: ([^\n]+?)(?: was not|\n|$)", plain)
    if unsupported:
        return (f"it holds Python objects besides tensors ({unsupported.group(1).strip()}); only tensors and "
                "plain containers are accepted, nothing was unpickled")
    if "Weights only load failed" in plain:
        return "it holds Python objects besides tensors; only tensors and plain containers are accepted, " \
               "nothing was unpickled"
    return f"damaged or not a checkpoint ({_plain(plain)})"


def _plain(text: str) -> str:
    """First line of a library message, without terminal colour codes (the CLI prints one line)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text).strip().splitlines()[0][:200]


def map_author_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an authors' state_dict to our module names; every key must map exactly once."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = key[len("branch."):] if key.startswith("branch.") else key
        targets = [rule(m) for pattern, rule in _AUTHOR_RULES if (m := pattern.match(name))]
        if len(targets) != 1:
            raise CheckpointError(f"authors' checkpoint key {key!r} matches {len(targets)} known names")
        if targets[0] in out:
            raise CheckpointError(f"authors' checkpoint maps two keys onto {targets[0]!r}")
        out[targets[0]] = value
    return out


def import_author_checkpoint(path: str | Path) -> DVF:
    """Load an authors' ``.pt`` (``ckpt['model']`` state_dict) safely into our DVF."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not _looks_like_torch_save(path):
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (expected a .pt file written by torch.save)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle refusals and corrupt zips alike
        raise CheckpointError(f"{path}: refused to load: {_refusal(str(exc))}") from None
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected ckpt['model'] to be a state_dict of tensors")
    mapped = map_author_keys(state)
    if "head.weight" not in mapped:
        raise CheckpointError(f"{path}: no 'final.weight' tensor; not an authors' DVF checkpoint")
    model = DVF(DVFConfig(descriptor_dim=int(mapped["head.weight"].shape[0])))
    _load_exact(model, mapped, path)
    return model
