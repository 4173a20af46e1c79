"""`dejavu-ros similarity` and `import-checkpoint` on the RobotCar triplet frames."""
import json

import pytest
import torch

from dejavu_ros.cli.main import main
from dejavu_ros.features.checkpoint import save_checkpoint
from dejavu_ros.features.dvf import DVF, DVFConfig
from dejavu_ros.resources import default_model_path

from conftest import shared

NAMES = ["anchor_0", "anchor_1", "positive_0", "positive_1", "negative_0", "negative_1"]


@pytest.fixture(scope="module")
def random_model(tmp_path_factory):
    torch.manual_seed(0)
    return save_checkpoint(DVF(DVFConfig.light()), tmp_path_factory.mktemp("m") / "random.safetensors")


def triplet_images():
    folder = shared("robotcar_dejavu_triplets")
    return [str(folder / f"image_{n}.png") for n in NAMES]


def test_prints_a_six_by_six_matrix(capsys, random_model):
    assert main(["similarity", *triplet_images(), "--model", str(random_model), "--size", "128x128"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 7  # header + 6 rows
    rows = [[float(v) for v in line.split()[1:]] for line in lines[1:]]
    assert all(len(r) == 6 for r in rows)
    # an image is most similar to itself (exactly 1 only when no two descriptors coincide)
    assert all(rows[i][i] == max(rows[i]) for i in range(6))


def test_json_output_and_pca_pictures(capsys, random_model, tmp_path):
    images = triplet_images()[:3]
    code = main(["similarity", *images, "--model", str(random_model), "--json", "--size", "128x128",
                 "--pca-dir", str(tmp_path / "pca")])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["images"] == images
    matrix = data["matrix"]
    assert len(matrix) == 3 and all(0.0 <= v <= 1.0 for row in matrix for v in row)
    assert sorted(p.name for p in (tmp_path / "pca").iterdir()) == [
        "image_anchor_0_pca.png", "image_anchor_1_pca.png", "image_positive_0_pca.png"]


@pytest.mark.skipif(not default_model_path().is_file(), reason="default model not shipped yet")
def test_default_model_ranks_same_place_above_other_place(capsys):
    assert main(["similarity", *triplet_images(), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)["matrix"]
    # anchor_0 vs its neighbour frame beats anchor_0 vs the other place
    assert m[0][1] > max(m[0][4], m[0][5])


def test_missing_and_unreadable_inputs_are_one_line_errors(capsys, tmp_path, random_model):
    assert main(["similarity", str(tmp_path / "nope.png"), "--model", str(random_model)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "image not found" in err[0] and "nope.png" in err[0]
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    assert main(["similarity", str(bad), "--model", str(random_model)]) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert main(["similarity", *triplet_images()[:1], "--model", str(tmp_path / "missing.safetensors")]) == 2
    assert "model file not found" in capsys.readouterr().err


def test_import_checkpoint_cli(tmp_path, capsys):
    from test_checkpoint import author_state_dict

    torch.save({"model": author_state_dict(5)}, tmp_path / "alpha_04.pt")
    assert main(["import-checkpoint", str(tmp_path / "alpha_04.pt"), str(tmp_path / "out.safetensors")]) == 0
    assert "n=5" in capsys.readouterr().out
    assert main(["import-checkpoint", str(tmp_path / "none.pt"), str(tmp_path / "x.safetensors")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()
