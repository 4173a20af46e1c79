"""`dejavu-ros import-checkpoint AUTHORS.pt OUT.safetensors`: the authors' weights in our format.

The .pt file is read with ``torch.load(weights_only=True)``: tensors only, nothing unpickled.
"""
from __future__ import annotations

from pathlib import Path

from ..features.checkpoint import fingerprint, import_author_checkpoint, save_checkpoint


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("import-checkpoint", help="convert an authors' DVF checkpoint to safetensors",
                              description=__doc__)
    p.add_argument("source", type=Path, help="authors' checkpoint (.pt with ckpt['model'])")
    p.add_argument("out", type=Path, help="output .safetensors")
    p.set_defaults(func=run)


def run(args) -> int:
    from .outputs import output_file

    output_file(args.out, "out", overwrite=False)
    model = import_author_checkpoint(args.source)
    save_checkpoint(model, args.out, training={"imported_from": args.source.name})
    print(f"wrote {args.out}: DVF n={model.cfg.descriptor_dim}, fingerprint {fingerprint(model)}")
    return 0
