"""One safetensors file per head on the DVF map: its weights, its constructor's arguments and the
backbone it was trained on (a head only means something on the descriptor map it learned).

The keypoint head and the overlap head share this format; each names itself in ``format`` so that
one is never loaded as the other.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from safetensors import SafetensorError, safe_open
from torch import nn

from .checkpoint import save_safetensors_atomically


def save_head_file(head: nn.Module, path: str | Path, fmt: str, config: dict, backbone_fingerprint: str,
                   info: dict | None = None) -> None:
    meta = {"format": fmt, "config": json.dumps(config), "backbone_fingerprint": str(backbone_fingerprint),
            "info": json.dumps(info or {})}
    save_safetensors_atomically({k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}, path, meta)


def load_head_file(path: str | Path, fmt: str, build: Callable[..., nn.Module], error: type[Exception],
                   what: str) -> tuple[nn.Module, dict]:
    """(head in eval mode, metadata); ``error`` with a message naming the file for anything unusable."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = dict(fh.metadata() or {})
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise error(f"{path}: not a readable safetensors file ({exc})") from None
    if meta.get("format") != fmt:
        raise error(f"{path}: not a {what} (format {meta.get('format')!r}, expected {fmt})")
    try:
        head = build(**json.loads(meta["config"]))
        head.load_state_dict(tensors)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise error(f"{path}: damaged {what} ({str(exc).splitlines()[0]})") from None
    meta["info"] = json.loads(meta.get("info") or "{}")
    return head.eval(), meta
