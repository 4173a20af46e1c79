"""`dejavu-ros evaluate` end to end on a small synthetic manifest."""
from __future__ import annotations

import json

import pytest

from dejavu_ros.cli.main import main
from dejavu_ros.features.checkpoint import save_checkpoint
from training_support import tiny_model, write_route_manifest


@pytest.mark.slow
def test_evaluate_writes_summary_with_documented_keys(tmp_path):
    manifest = write_route_manifest(tmp_path / "data", places=4, size=(128, 128))
    model = save_checkpoint(tiny_model(), tmp_path / "m.safetensors")
    out = tmp_path / "eval"
    code = main(["evaluate", "--manifest", str(manifest), "--model", str(model), "--out", str(out),
                 "--no-progress", "--grid-max-side", "8", "--max-features", "100"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 8 and summary["conditions"] == ["day", "night"]
    assert set(summary["methods"]) == {"dvf", "orb_cx", "sift_cx", "rootsift_cx", "pixels"}
    for name, m in summary["methods"].items():
        for key in ("auc_within", "auc_cross", "recall@1", "recall@5", "auc_matrix"):
            assert key in m, (name, key)
        assert set(m["auc_matrix"]) == {"day", "night"}
        # both classes exist across conditions, so the cross-condition numbers are defined
        assert m["auc_cross"] is not None and m["auc_cross_pooled"] is not None and m["recall@1"] is not None
        assert m["auc_within"] is None  # one image per place and condition: no same-condition positives
    # pixels on the same texture under a lighting change must find the place (patch normalisation)
    assert summary["methods"]["pixels"]["recall@1"] == 100.0
    for png in ("roc.png", "pr.png", "auc_matrix_dvf.png", "features_pca.png", "retrievals_dvf.png"):
        assert (out / png).stat().st_size > 1000


def test_evaluate_rejects_unknown_method(tmp_path, capsys):
    manifest = write_route_manifest(tmp_path / "data", places=2, size=(32, 32))
    assert main(["evaluate", "--manifest", str(manifest), "--out", str(tmp_path / "o"), "--methods", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
