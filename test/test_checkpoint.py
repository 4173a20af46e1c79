"""Weights files: round trip, refusal of damaged / foreign / pickle-bearing files, authors' import."""
import json
import pathlib

import numpy as np
import pytest
import torch

from dejavu_ros.features.checkpoint import (CheckpointError, fingerprint, import_author_checkpoint,
                                            load_checkpoint, map_author_keys, read_metadata, save_checkpoint)
from dejavu_ros.features.dvf import DVF, DVFConfig
from dejavu_ros.features.config import FeatureConfig
from dejavu_ros.features.extractor import FeatureExtractor


@pytest.fixture
def light_model():
    torch.manual_seed(0)
    model = DVF(DVFConfig.light(6))
    # non-trivial batch-norm statistics so that they are checked too
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def test_round_trip_gives_identical_outputs(tmp_path, light_model):
    path = save_checkpoint(light_model, tmp_path / "m.safetensors", training={"steps": 3})
    loaded, meta = load_checkpoint(path)
    assert meta["training"] == {"steps": 3}
    assert loaded.cfg == light_model.cfg
    x = torch.rand(1, 3, 128, 144)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), light_model(x))
    assert fingerprint(loaded) == fingerprint(light_model)


def test_fingerprint_changes_with_weights_and_config(light_model):
    before = fingerprint(light_model)
    with torch.no_grad():
        light_model.head.weight[0, 0] += 1e-3
    assert fingerprint(light_model) != before
    assert fingerprint(DVF(DVFConfig.light(6))) != fingerprint(DVF(DVFConfig.light(7)))


def test_colour_convention_is_stored_and_an_rgb_header_is_unchanged(tmp_path, light_model):
    """RGB models were fingerprinted by maps and trust calibrations before ``colour`` existed: their
    header and fingerprint stay as they were; a grey model says so in its header and differs."""
    rgb = save_checkpoint(light_model, tmp_path / "rgb.safetensors")
    assert "colour" not in read_metadata(rgb)["model_config"]
    before = fingerprint(light_model)
    light_model.cfg.colour = "grey"
    grey = save_checkpoint(light_model, tmp_path / "grey.safetensors")
    assert read_metadata(grey)["model_config"]["colour"] == "grey"
    assert load_checkpoint(grey)[0].cfg.colour == "grey" and load_checkpoint(rgb)[0].cfg.colour == "rgb"
    assert fingerprint(light_model) != before


def test_truncated_file_is_refused(tmp_path, light_model):
    path = save_checkpoint(light_model, tmp_path / "m.safetensors")
    data = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.safetensors.*truncated or corrupt"):
        load_checkpoint(cut)


@pytest.mark.parametrize("content", [b"", b"garbage" * 10, b"\x89PNG\r\n\x1a\n" + b"\0" * 64])
def test_garbage_is_refused(tmp_path, content):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        load_checkpoint(path)


def test_missing_file_and_foreign_safetensors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors")
    from safetensors.torch import save_file
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="not a dejavu_ros DVF checkpoint"):
        load_checkpoint(tmp_path / "other.safetensors")


def test_shape_mismatch_names_the_tensor(tmp_path, light_model):
    from safetensors.torch import save_file
    state = {k: v.clone() for k, v in light_model.state_dict().items()}
    state["head.weight"] = torch.zeros(9, 16, 1, 1)
    meta = {"format": "dejavu_ros.dvf", "format_version": "1",
            "model_config": json.dumps(light_model.cfg.to_dict()), "training": "{}"}
    save_file(state, str(tmp_path / "x.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="head.weight has shape"):
        load_checkpoint(tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match="differs from the expected"):
        save_checkpoint(light_model, tmp_path / "ok.safetensors")
        load_checkpoint(tmp_path / "ok.safetensors", expect_config=DVFConfig())


def test_newer_format_version_is_refused(tmp_path, light_model):
    from safetensors.torch import save_file
    meta = {"format": "dejavu_ros.dvf", "format_version": "99",
            "model_config": json.dumps(light_model.cfg.to_dict()), "training": "{}"}
    save_file({k: v.contiguous() for k, v in light_model.state_dict().items()},
              str(tmp_path / "new.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="newer"):
        read_metadata(tmp_path / "new.safetensors")


def test_save_is_atomic_and_keeps_the_old_file_on_failure(tmp_path, light_model, monkeypatch):
    path = save_checkpoint(light_model, tmp_path / "m.safetensors")
    before = path.read_bytes()
    import dejavu_ros.features.checkpoint as ckpt

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(ckpt, "save_file", boom)
    with pytest.raises(OSError):
        save_checkpoint(light_model, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


# --- authors' layout -------------------------------------------------------------------------

def author_state_dict(n_dims=10, prefix=""):
    """A state_dict with the authors' documented module names and shapes (their ConvBlock wraps _layers)."""
    state = {}

    def conv_block(name, cin, cout, k):
        state[f"{name}._layers.conv.weight"] = 0.05 * torch.randn(cout, cin, k, k)
        for p in ("weight", "bias", "running_mean", "running_var"):
            state[f"{name}._layers.bn.{p}"] = torch.rand(cout)
        state[f"{name}._layers.bn.num_batches_tracked"] = torch.tensor(5)

    for i, cin in enumerate([3, 32, 32], 1):
        conv_block(f"first_conv.block{i}", cin, 32, 3)
    cin = 32
    for layer, (cout, blocks) in enumerate([(32, 3), (64, 16), (128, 3), (128, 3)], 1):
        for b in range(1, blocks + 1):
            conv_block(f"layer{layer}.block{b}.block1", cin, cout, 3)
            conv_block(f"layer{layer}.block{b}.block2", cout, cout, 3)
            if b == 1 and (cin != cout or layer == 2):
                conv_block(f"layer{layer}.block{b}.downsample", cin, cout, 1)
            cin = cout
    for i in range(1, 5):
        conv_block(f"branch{i}.block", 128, 32, 1)
    conv_block("last_conv.block1", 320, 128, 3)
    state["last_conv.conv1.weight"] = torch.randn(32, 128, 1, 1)
    state["final.weight"] = torch.randn(n_dims, 32, 1, 1)
    return {prefix + k: v for k, v in state.items()}


@pytest.mark.parametrize("prefix", ["", "branch."])
def test_authors_layout_maps_every_key_exactly_once(tmp_path, prefix):
    state = author_state_dict(10, prefix)
    torch.save({"model": state, "epoch": 3}, tmp_path / "alpha.pt")
    model = import_author_checkpoint(tmp_path / "alpha.pt")
    ours = model.state_dict()
    assert len(ours) == len(state)
    assert torch.equal(ours["head.weight"], state[prefix + "final.weight"])
    assert torch.equal(ours["spp.0.conv.weight"], state[prefix + "branch1.block._layers.conv.weight"])  # pool 32
    assert torch.equal(ours["layer2.0.shortcut.bn.running_var"],
                       state[prefix + "layer2.block1.downsample._layers.bn.running_var"])
    assert model.cfg.descriptor_dim == 10


def test_author_import_refuses_unknown_and_duplicate_keys():
    state = author_state_dict(3)
    state["mystery.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="mystery.weight"):
        map_author_keys(state)
    dup = author_state_dict(3)
    dup["branch.final.weight"] = dup["final.weight"]
    with pytest.raises(CheckpointError, match="two keys"):
        map_author_keys(dup)


class _Payload:
    """Unpickling this would create a file: proof that nothing is executed."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_pickle_payload_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"model": author_state_dict(3), "evil": _Payload(str(marker))}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused to load"):
        import_author_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()
    # the same bytes under a .safetensors name are refused as well
    (tmp_path / "evil.safetensors").write_bytes((tmp_path / "evil.pt").read_bytes())
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "evil.safetensors")
    assert not marker.exists()


def test_imported_model_round_trips_through_our_format(tmp_path):
    torch.save({"model": author_state_dict(4)}, tmp_path / "a.pt")
    model = import_author_checkpoint(tmp_path / "a.pt").eval()
    path = save_checkpoint(model, tmp_path / "a.safetensors")
    # in the model's own memory layout, so that the same sums run in the same order
    fe = FeatureExtractor.from_config(FeatureConfig(model=str(path), device="cpu", channels_last=False))
    image = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    with torch.no_grad():
        expected = model(fe.prepare(image))[0]
    assert torch.isfinite(expected).all()
    assert torch.allclose(fe.extract(image), expected, atol=1e-6)
