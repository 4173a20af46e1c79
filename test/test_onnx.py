"""ONNX export and the ONNX Runtime and OpenVINO backends: a checked graph of any image size, the same
descriptors as torch (|diff| < 1e-3) and the same ranked candidates through the engine."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import shared
from dejavu_ros.cli.main import main
from dejavu_ros.config import DejavuConfig
from dejavu_ros.features.config import FeatureConfig
from dejavu_ros.features.extractor import FeatureExtractor, cpu_has_native_bf16
from dejavu_ros.io.images import read_rgb
from dejavu_ros.relocalization.engine import RelocalizationEngine

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
IDENTITY = [0.0, 0.0, 0.0, 1.0]
BACKENDS = ("onnxruntime", "openvino")


def runtime_backend(name: str) -> str:
    pytest.importorskip(name)
    return name


def triplet(name):
    return read_rgb(shared("robotcar_dejavu_triplets", f"image_{name}.png"))


def test_export_command_writes_a_checked_graph_with_dynamic_size(tmp_path, capsys):
    assert main(["export-onnx", str(tmp_path / "dvf.onnx")]) == 0
    assert "opset 17" in capsys.readouterr().out
    model = onnx.load(str(tmp_path / "dvf.onnx"))
    onnx.checker.check_model(model)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"] and model.opset_import[0].version == 17
    session = ort.InferenceSession(str(tmp_path / "dvf.onnx"), providers=["CPUExecutionProvider"])
    for h, w in ((128, 128), (240, 320), (131, 199)):
        out = session.run(None, {"image": np.random.default_rng(0).random((1, 3, h, w), np.float32)})[0]
        assert out.shape == (1, 10, h, w)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size", [None, (320, 240), (200, 150)])
def test_runtime_backend_gives_the_torch_descriptors(backend, size):
    torch_fe = FeatureExtractor.from_config(FeatureConfig(device="cpu"))
    ort_fe = FeatureExtractor.from_config(FeatureConfig(device="cpu", backend=runtime_backend(backend)))
    for name in ("anchor_0", "positive_0"):
        a = torch_fe.extract(triplet(name), size=size)
        b = ort_fe.extract(triplet(name), size=size)
        assert a.shape == b.shape and float((a - b).abs().max()) < 1e-3


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="OpenVINO computes bf16 only on CPUs that have it natively")
def test_openvino_in_bf16_stays_as_close_to_fp32_as_torch_in_bf16_and_unit_length():
    def closeness(fe, image):
        cosine = torch.nn.functional.cosine_similarity(reference.extract(image), fe.extract(image), dim=0)
        return float(cosine.mean()), float(cosine.quantile(0.01))

    reference = FeatureExtractor.from_config(FeatureConfig(device="cpu"))
    torch_bf16 = FeatureExtractor.from_config(FeatureConfig(device="cpu", precision="bf16"))
    fast = FeatureExtractor.from_config(FeatureConfig(device="cpu", backend=runtime_backend("openvino"),
                                                      precision="bf16"))
    for name in ("anchor_0", "positive_0", "negative_0"):
        image = triplet(name)
        assert float((reference.extract(image) - fast.extract(image)).abs().max()) > 1e-4  # it did run in bf16
        (mean, low), (torch_mean, torch_low) = closeness(fast, image), closeness(torch_bf16, image)
        assert mean > 0.9995 and mean >= torch_mean - 1e-4 and low >= torch_low - 1e-3, (mean, low, torch_mean, torch_low)
        assert float((fast.extract(image).norm(dim=0) - 1).abs().max()) < 1e-5  # normalised again in fp32


@pytest.mark.parametrize("runtime", BACKENDS)
def test_the_engine_ranks_the_same_candidates_with_either_backend(tmp_path, runtime):
    ranked = []
    for backend in ("torch", runtime_backend(runtime)):
        cfg = DejavuConfig()
        cfg.features.device, cfg.features.backend = "cpu", backend
        cfg.node.map_path = str(tmp_path / f"{backend}.db")
        engine = RelocalizationEngine.from_config(cfg, map_mode="map")
        for i, (name, x) in enumerate([("anchor_0", 0.0), ("negative_0", 100.0), ("negative_1", 200.0)]):
            assert engine.add_frame(triplet(name), float(i), [x, 0.0, 0.0], IDENTITY).added
        results = [engine.relocalize(triplet(q), 10.0 + k) for k, q in enumerate(("anchor_1", "positive_1"))]
        ranked.append([[c.keyframe_id for c in r.candidates] for r in results])
        ranked.append([[round(c.cx_score, 4) for c in r.candidates] for r in results])
        engine.close()
    assert ranked[0] == ranked[2]
    np.testing.assert_allclose(ranked[1], ranked[3], atol=2e-3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_runtime_backends_refuse_a_gpu_device_clearly(backend):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device exists here")
    with pytest.raises(Exception, match="CUDA is not available|runs on the CPU"):
        FeatureExtractor.from_config(FeatureConfig(device="cuda", backend=backend))


@pytest.mark.parametrize("backend,package", [("onnxruntime", "onnxruntime"), ("openvino", "openvino")])
def test_a_missing_runtime_package_is_named(monkeypatch, backend, package):
    import sys

    from dejavu_ros.features.onnx_backend import OnnxError

    monkeypatch.setitem(sys.modules, package, None)  # import fails as if it were not installed
    with pytest.raises(OnnxError, match=f"features.backend {backend} needs the {package} package"):
        FeatureExtractor.from_config(FeatureConfig(device="cpu", backend=backend))


def test_a_precision_the_backend_cannot_run_is_said_once_at_start(caplog):
    with caplog.at_level("WARNING", logger="dejavu_ros.features.extractor"):
        FeatureExtractor.from_config(FeatureConfig(device="cpu", backend="onnxruntime", precision="bf16"))
    assert "onnxruntime runs fp32" in caplog.text
    if cpu_has_native_bf16() and runtime_backend("openvino"):
        caplog.clear()
        with caplog.at_level("WARNING", logger="dejavu_ros.features.extractor"):
            FeatureExtractor.from_config(FeatureConfig(device="cpu", backend="openvino", precision="bf16"))
        assert "runs fp32" not in caplog.text  # OpenVINO computes in bf16 here
