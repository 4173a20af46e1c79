"""The training loop: SGD on the contextual triplet loss, DDP-ready, resumable, time-bounded.

One code path serves a laptop and a cluster: the process group is always initialised (gloo, world
size 1, when not launched by ``torchrun``), the model is always wrapped in
``DistributedDataParallel`` and the data always goes through a ``DistributedSampler``. Rank 0
validates, logs and writes checkpoints; the others wait at a barrier.

Output folder: ``last.safetensors`` (every few minutes), ``best.safetensors`` (best validation
cross-condition AUC or R@1 as ``validation.select`` says), ``last_state.pt`` (optimizer + counters, tensors only, for ``--resume``),
``log.csv`` (one row per step), ``validation.csv``, and TensorBoard events when available.

A resume continues exactly where the run stopped: the weights, the optimiser's momentum, the step
and epoch, the position inside the epoch (the samples already drawn are skipped, not redrawn) and
torch's random state (the pixel term's point draws).
"""
from __future__ import annotations

import csv
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from .. import schema
from ..features.checkpoint import load_checkpoint, save_checkpoint
from ..features.dvf import DVF, DVFConfig
from .config import TrainConfig
from .losses import contextual_triplet_loss
from ..datasets.manifest import ImageRecord
from .sampling import TripletDataset
from .validation import Validator

LOG_FIELDS = ("step", "epoch", "elapsed_s", "loss", "cross", "consistency", "spatial", "cx_pos", "cx_neg", "lr")
VALIDATION_FIELDS = ("step", "epoch", "elapsed_s")


@dataclass
class DistInfo:
    rank: int
    world_size: int
    device: torch.device
    owns_group: bool

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed() -> DistInfo:
    """Join the ``torchrun`` group, or make a world of one (gloo, file rendezvous: no port to pick)."""
    owns = False
    if not dist.is_initialized():
        world = int(os.environ.get("WORLD_SIZE", "1"))
        use_cuda = torch.cuda.is_available() and world > 1
        if world > 1:
            dist.init_process_group("nccl" if use_cuda else "gloo")
        else:
            fd, store = tempfile.mkstemp(prefix="dejavu_ros_dist_")
            os.close(fd)
            os.unlink(store)
            dist.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)
        owns = True
    rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}") if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return DistInfo(rank, world, device, owns)


def build_model(cfg: TrainConfig) -> DVF:
    dim = cfg.model.descriptor_dim
    arch = {"light": DVFConfig.light, "mid": DVFConfig.mid, "full": DVFConfig}[cfg.model.variant](descriptor_dim=dim)
    torch.manual_seed(cfg.optim.seed)
    arch.scaling, arch.colour = cfg.model.scaling, cfg.model.colour
    if cfg.model.init:
        model, _ = load_checkpoint(cfg.model.init)
        # fine-tuning may change the input convention
        model.cfg.scaling, model.cfg.colour = cfg.model.scaling, cfg.model.colour
        return model
    return DVF(arch)


class Trainer:
    """Runs training to the first of: max_epochs, max_steps, max_minutes."""

    def __init__(self, train: list[ImageRecord], val: dict[str, list[ImageRecord]] | list[ImageRecord],
                 cfg: TrainConfig, out_dir: str | Path,
                 resume: str | Path | None = None, max_minutes: float = 0.0, progress: bool = True,
                 sources: list[str] | None = None) -> None:
        self.cfg, self.out = cfg, Path(out_dir)
        self.max_minutes, self.progress, self.sources = max_minutes, progress, sources or []
        if cfg.optim.threads:
            torch.set_num_threads(cfg.optim.threads)
        self.dist = init_distributed()
        self.step, self.epoch, self.best, self.best_step, self.elapsed_before = 0, 0, -1.0, -1, 0.0
        self.step_in_epoch = 0
        state = None
        if resume:
            model, meta = load_checkpoint(resume)
            state_path = Path(resume).with_name(Path(resume).stem + "_state.pt")
            if state_path.is_file():
                state = torch.load(state_path, map_location="cpu", weights_only=True)
            done = meta.get("training", {})
            self.step, self.epoch = int(done.get("steps", 0)), int(done.get("epochs", 0))
            self.best, self.best_step = float(done.get("best_value", -1.0)), int(done.get("best_step", -1))
            self.elapsed_before = float(done.get("wall_time_s", 0.0))
            self.step_in_epoch = int(done.get("step_in_epoch", 0))
        else:
            model = build_model(cfg)
        self.model = model.to(self.dist.device)
        self.ddp = DistributedDataParallel(self.model, device_ids=[self.dist.device] if
                                           self.dist.device.type == "cuda" else None)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.optim.lr, momentum=cfg.optim.momentum,
                                         weight_decay=cfg.optim.weight_decay)
        if state is not None and "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
            for group in self.optimizer.param_groups:  # the config's lr wins over the saved one
                group["lr"] = cfg.optim.lr
        if state is not None and "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
        self.dataset = TripletDataset(train, cfg, scaling=self.model.cfg.scaling, colour=self.model.cfg.colour)
        self.sampler = DistributedSampler(self.dataset, num_replicas=self.dist.world_size, rank=self.dist.rank,
                                          shuffle=True, seed=cfg.optim.seed)
        self.validator = None
        if isinstance(val, list):
            val = {"validation": val} if val else {}
        if val and self.dist.main:
            v = cfg.validation
            self.validator = Validator(val, v.max_images, cfg.data.min_height, grid_max_side=v.grid_max_side,
                                       stride=cfg.loss.cx_stride)
        self.n_train, self.n_val = len(train), sum(len(v) for v in val.values())
        self.writer = self._tensorboard() if self.dist.main else None

    # -- bookkeeping ---------------------------------------------------------------------------------

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:  # noqa: BLE001 - tensorboard is optional
            return None
        return SummaryWriter(str(self.out / "tensorboard"))

    def _append(self, name: str, row: dict[str, Any], fields: tuple[str, ...]) -> None:
        path = self.out / name
        new = not path.exists()
        with path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            if new:
                writer.writeheader()
            writer.writerow({k: row.get(k, "") for k in fields})

    def summary(self, wall: float, last_val: dict[str, float] | None) -> dict[str, Any]:
        return {"steps": self.step, "epochs": self.epoch, "step_in_epoch": self.step_in_epoch,
                "wall_time_s": round(wall, 1),
                "world_size": self.dist.world_size, "train_images": self.n_train, "val_images": self.n_val,
                "manifests": self.sources, "best_metric": self.cfg.validation.select, "best_value": self.best,
                "best_step": self.best_step,
                "last_validation": last_val or {}, "config": schema.to_nested(self.cfg)}

    def save(self, name: str, wall: float, last_val: dict[str, float] | None) -> Path:
        path = save_checkpoint(self.model, self.out / name, training=self.summary(wall, last_val))
        if name == "last.safetensors":
            tmp = self.out / "last_state.pt.tmp"
            torch.save({"optimizer": self.optimizer.state_dict(), "torch_rng": torch.get_rng_state()}, tmp)
            os.replace(tmp, self.out / "last_state.pt")
        return path

    def validate(self, wall: float) -> dict[str, float] | None:
        if self.validator is None:
            return None
        result = self.validator.evaluate(self.model, self.dist.device)
        row = {"step": self.step, "epoch": self.epoch, "elapsed_s": round(wall, 1),
               **{k: round(v, 3) for k, v in result.items()}}
        self._append("validation.csv", row, self._validation_fields(result))
        if self.writer is not None:
            for k, v in result.items():
                self.writer.add_scalar(f"val/{k}", v, self.step)
        metric = result[self.cfg.validation.select]
        if metric > self.best:
            self.best, self.best_step = metric, self.step
            self.save("best.safetensors", wall, result)
        return result

    def _validation_fields(self, result: dict[str, float]) -> tuple[str, ...]:
        """The header of an existing validation.csv (a resumed run), else this result's keys."""
        path = self.out / "validation.csv"
        if path.is_file():
            with path.open(newline="") as handle:
                header = next(csv.reader(handle), None)
            if header:
                return tuple(header)
        return VALIDATION_FIELDS + tuple(sorted(result))

    def _batches(self):
        """This epoch's batches from the current position (a resumed run skips what it already drew)."""
        self.sampler.set_epoch(self.epoch)
        self.dataset.set_epoch(self.epoch)
        indices = list(iter(self.sampler))[self.step_in_epoch * self.cfg.optim.batch_size:]
        return DataLoader(self.dataset, batch_size=self.cfg.optim.batch_size, sampler=indices, num_workers=0,
                          drop_last=False)

    # -- the loop ------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        cfg, main = self.cfg, self.dist.main
        self.out.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        wall = lambda: self.elapsed_before + time.monotonic() - start  # noqa: E731
        deadline = start + self.max_minutes * 60 if self.max_minutes > 0 else float("inf")
        last_val_time = last_ckpt_time = time.monotonic()
        last_val: dict[str, float] | None = None
        bar = None
        if main and self.progress:
            from tqdm import tqdm

            per_epoch = -(-len(self.sampler) // cfg.optim.batch_size)
            total = cfg.optim.max_steps or cfg.optim.max_epochs * per_epoch
            bar = tqdm(total=total, initial=self.step, desc="train", unit="step", dynamic_ncols=True)
        stop = False
        self.ddp.train()
        while not stop and self.epoch < cfg.optim.max_epochs:
            for batch in self._batches():
                images = batch["images"].to(self.dist.device)
                b = images.shape[0]
                dense = self.ddp(images.flatten(0, 1)).unflatten(0, (b, 6))
                terms = contextual_triplet_loss(dense, cfg.loss, batch["aligned"].to(self.dist.device))
                self.optimizer.zero_grad(set_to_none=True)
                terms.total.backward()
                if cfg.optim.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
                self.optimizer.step()
                self.step += 1
                self.step_in_epoch += 1
                now = time.monotonic()
                if main:
                    row = {"step": self.step, "epoch": self.epoch, "elapsed_s": round(wall(), 1),
                           **{k: float(getattr(terms, k if k != "loss" else "total").detach())
                              for k in ("loss", "cross", "consistency", "spatial", "cx_pos", "cx_neg")},
                           "lr": cfg.optim.lr}
                    self._append("log.csv", row, LOG_FIELDS)
                    if self.writer is not None:
                        for k in ("loss", "cross", "consistency", "spatial"):
                            self.writer.add_scalar(f"train/{k}", row[k], self.step)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{row['loss']:.3f}", best=f"{self.best:.1f}")
                stop = bool(cfg.optim.max_steps and self.step >= cfg.optim.max_steps) or now >= deadline
                stop = self._agree(stop)
                due_val = (self.step % cfg.validation.every_steps == 0 or
                           (cfg.validation.every_minutes > 0 and now - last_val_time >= 60 * cfg.validation.every_minutes))
                if main and due_val and not stop:
                    last_val = self.validate(wall()) or last_val
                    last_val_time = time.monotonic()
                if main and time.monotonic() - last_ckpt_time >= 60 * cfg.validation.checkpoint_minutes:
                    self.save("last.safetensors", wall(), last_val)
                    last_ckpt_time = time.monotonic()
                if self.dist.world_size > 1:
                    dist.barrier()
                if stop:
                    break
            else:
                self.epoch += 1
                self.step_in_epoch = 0
        if main:
            last_val = self.validate(wall()) or last_val
            if self.validator is None:  # nothing to compare: the final weights are the best we know
                self.best_step = self.step
                self.save("best.safetensors", wall(), last_val)
            self.save("last.safetensors", wall(), last_val)
        if bar is not None:
            bar.close()
        if self.writer is not None:
            self.writer.close()
        result = self.summary(wall(), last_val)
        self.close()
        return result

    def _agree(self, stop: bool) -> bool:
        """Every rank stops at the same step (rank 0's clock decides)."""
        if self.dist.world_size == 1:
            return stop
        flag = torch.tensor([1.0 if stop else 0.0], device=self.dist.device)
        dist.broadcast(flag, src=0)
        return bool(flag.item())

    def close(self) -> None:
        if self.dist.owns_group and dist.is_initialized():
            dist.destroy_process_group()
