"""Bad input: maps and model files — damaged, foreign or mismatched maps; pickle-bearing, truncated or tampered weights."""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import sqlite3
from pathlib import Path
from typing import Callable

import pytest
import torch
from bad_input_support import Case, case_params, check_case, cli, sha256
from safetensors.torch import save_file

from dejavu_ros.features.checkpoint import CheckpointError, load_checkpoint
from dejavu_ros.map import KeyframeMap, MapMismatchError, MapMismatchWarning


def empty_map_relocalize(env):
    engine = env.mapping_engine()
    engine.close()
    run = env.relocalize("--report", env.tmp / "frames.jsonl", map_path=env.tmp / "new.db")
    return run


def check_empty_map(env, run):
    records = [json.loads(line) for line in (env.tmp / "frames.jsonl").read_text().splitlines()]
    assert len(records) == 8 and {r["status"] for r in records} == {"map_empty"}
    assert "frames: 8  relocalized: 0" in run.out


def damaged_map(kind: str):
    def action(env):
        path = env.tmp / "bad.db"
        if kind == "truncated":
            shutil.copy(env.a.map, path)
            os.truncate(path, path.stat().st_size // 2)
        elif kind == "text":
            path.write_text("just some text\n")
        elif kind == "empty":
            path.write_bytes(b"")
        elif kind == "foreign":
            with sqlite3.connect(path) as conn:
                conn.execute("CREATE TABLE t (x)")
            conn.close()
        elif kind == "directory":
            path.mkdir()
        return env.relocalize(map_path=path)
    return action


def original_map_intact(env, _outcome=None):
    assert cli("map-info", env.a.map, "--json").code == 0
    assert sha256(env.a.map) == env.a.map_hash


def mismatch_allowed(env, _outcome):
    original_map_intact(env)
    with pytest.warns(MapMismatchWarning, match="continuing because allow_model_mismatch is set"):
        run = env.relocalize("--allow-model-mismatch", model=env.a.other_model)
    assert run.code == 0 and "frames: 8" in run.out, run.err


def newer_schema(env):
    path = env.copy_map()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    return KeyframeMap.open(path)


def pickle_checkpoint(env, name: str) -> Path:
    class Payload:
        def __reduce__(self):
            return (pathlib.Path.touch, (pathlib.Path(env.tmp / "pwned"),))

    path = env.tmp / name
    torch.save({"model": {"final.weight": torch.zeros(10, 32, 1, 1)}, "extra": Payload()}, path)
    return path


def import_pickle(env):
    return cli("import-checkpoint", pickle_checkpoint(env, "evil.pt"), env.tmp / "out.safetensors")


def pickle_as_model(env):
    return env.build(env.a.bag, model=pickle_checkpoint(env, "evil.safetensors"))


def payload_not_run(env, _outcome=None):
    assert not (env.tmp / "pwned").exists()
    assert not (env.tmp / "out.safetensors").exists() and not (env.tmp / "built.db").exists()


def truncated_model(env):
    data = env.a.model.read_bytes()
    (env.tmp / "cut.safetensors").write_bytes(data[: len(data) // 2])
    return env.relocalize(model=env.tmp / "cut.safetensors")


def foreign_safetensors(env):
    save_file({"w": torch.zeros(3)}, env.tmp / "foreign.safetensors")
    return load_checkpoint(env.tmp / "foreign.safetensors")


def tampered_checkpoint(change: Callable[[dict], None]):
    def action(env):
        model, _ = load_checkpoint(env.a.model)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        change(state)
        from safetensors import safe_open
        with safe_open(str(env.a.model), framework="pt") as f:
            meta = f.metadata()
        save_file(state, env.tmp / "tampered.safetensors", metadata=meta)
        return load_checkpoint(env.tmp / "tampered.safetensors")
    return action


CASES = [
    Case("map-empty", empty_map_relocalize, 0, r"frames: 8", after=check_empty_map),
    Case("map-from-another-model", lambda e: e.relocalize(model=e.a.other_model), 2,
         r"map\.db: map was built with model fingerprint [0-9a-f]+, "
         r"the loaded model has fingerprint [0-9a-f]+; rebuild", after=mismatch_allowed),
    Case("map-wrong-descriptor-size", lambda e: e.relocalize(model=e.a.dim8_model), 2,
         r"map\.db: map stores 10-dimensional descriptors, the model produces 8-dimensional ones",
         after=original_map_intact),
    Case("map-truncated", damaged_map("truncated"), 2, r"bad\.db: truncated map file",
         after=original_map_intact),
    Case("map-not-sqlite", damaged_map("text"), 2, r"bad\.db: not a keyframe map \(not an SQLite database\)"),
    Case("map-empty-file", damaged_map("empty"), 2, r"bad\.db: empty file \(0 bytes\)"),
    Case("map-foreign-sqlite", damaged_map("foreign"), 2,
         r"bad\.db: an SQLite database but not a keyframe map"),
    Case("map-is-a-directory", damaged_map("directory"), 2, r"map not found: .*bad\.db"),
    Case("map-newer-schema", newer_schema, MapMismatchError, r"copy\.db: map schema version 99 is newer"),
    Case("map-out-exists", lambda e: e.build(e.a.bag, out=e.a.map), 2,
         r"map\.db already exists; pass --append",
         after=original_map_intact),
    Case("checkpoint-pickle-import", import_pickle, 2, r"evil\.pt: refused to load: it holds Python objects besides tensors",
         after=payload_not_run),
    Case("checkpoint-pickle-as-model", pickle_as_model, 2,
         r"evil\.safetensors: not a readable safetensors file",
         after=payload_not_run),
    Case("checkpoint-error-has-no-terminal-codes", import_pickle, 2, r"^[^\x1b]*$"),
    Case("checkpoint-truncated", truncated_model, 2, r"cut\.safetensors: not a readable safetensors file "
         r"\(truncated or corrupt"),
    Case("checkpoint-foreign-safetensors", foreign_safetensors, CheckpointError,
         r"foreign\.safetensors: not a dejavu_ros DVF checkpoint"),
    Case("checkpoint-wrong-tensor-shape",
         tampered_checkpoint(lambda s: s.update({"head.weight": torch.zeros(7, 16, 1, 1)})), CheckpointError,
         r"tampered\.safetensors: tensor head\.weight has shape \(7, 16, 1, 1\)"),
    Case("checkpoint-nan-weights", tampered_checkpoint(lambda s: s["head.weight"].fill_(float("nan"))),
         CheckpointError, r"tensor head\.weight holds NaN or Inf"),
    Case("checkpoint-missing", lambda e: e.relocalize(model=e.tmp / "none.safetensors"), 2,
         r"model file not found: .*none\.safetensors"),
]


@pytest.mark.parametrize("case", case_params(CASES))
def test_bad_input(case, assets, tmp_path):
    check_case(case, assets, tmp_path)
