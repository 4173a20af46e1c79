"""DVF network: architecture facts, shapes for awkward sizes, normalisation, device/dtype."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dejavu_ros.errors import DejavuError
from dejavu_ros.features.dvf import DVF, MIN_SIDE, DVFConfig, parameter_count, unit_channels
from dejavu_ros.features.config import FeatureConfig
from dejavu_ros.features.extractor import FeatureExtractor, resolve_device
from dejavu_ros.features.preprocess import EXPOSURE_TARGET_MEAN, ImageError, equalise_exposure, to_tensor
from dejavu_ros.training.augment import scale_input

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("n", [3, 10, 16, 32])
def test_parameter_count_matches_paper_architecture(n):
    assert parameter_count(DVF(DVFConfig(descriptor_dim=n))) == 3_339_552 + 32 * n


def test_light_variant_is_smaller_and_keeps_output_contract():
    light = DVF(DVFConfig.light())
    assert parameter_count(light) < parameter_count(DVF()) / 4
    out = light.eval()(torch.rand(1, 3, 128, 160))
    assert out.shape == (1, 10, 128, 160)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("height,width", [(128, 128), (131, 200), (480, 640)])
def test_output_shape_and_unit_norm(device, height, width):
    torch.manual_seed(0)
    model = DVF(DVFConfig(descriptor_dim=10)).to(device).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, height, width, device=device))
    assert out.shape == (2, 10, height, width)
    norms = out.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-4)


def test_normalisation_switch_off_gives_unnormalised_output():
    model = DVF(DVFConfig(descriptor_dim=4, normalize=False)).eval()
    with torch.no_grad():
        norms = model(torch.rand(1, 3, 128, 128)).norm(dim=1)
    assert not torch.allclose(norms, torch.ones_like(norms), atol=1e-2)


def test_small_input_is_a_clear_error_in_the_network():
    with pytest.raises(ValueError, match=f"≥ {MIN_SIDE}"):
        DVF().eval()(torch.rand(1, 3, 79, 127))


def test_extractor_pads_small_images_and_crops_back():
    fe = FeatureExtractor.random(seed=1)
    image = np.random.default_rng(0).integers(0, 255, (79, 127, 3), dtype=np.uint8)
    dense = fe.extract(image)
    assert dense.shape == (10, 79, 127)
    # the real pixels get the same descriptors as when the caller pads the image itself
    padded = np.pad(image, ((0, 128 - 79), (0, 128 - 127), (0, 0)), mode="edge")
    assert torch.allclose(fe.extract(padded)[:, :79, :127], dense, atol=1e-5)


def test_extractor_refuses_small_images_when_padding_is_off():
    fe = FeatureExtractor.random()
    fe.pad_small = False
    with pytest.raises(DejavuError, match="smaller than DVF's minimum side"):
        fe.extract(np.zeros((79, 127, 3), np.uint8))


def test_max_scaling_stretches_dark_images_like_the_authors():
    dark = np.full((4, 4, 3), 40, np.uint8)
    dark[0, 0] = 80
    t = to_tensor(dark, "max")
    assert float(t.max()) == pytest.approx(1.0)
    assert float(to_tensor(dark, "fixed").max()) == pytest.approx(80 / 255)
    assert float(to_tensor(np.zeros((4, 4, 3), np.uint8), "max").max()) == 0.0


def test_exposure_scaling_lifts_dark_frames_and_leaves_bright_ones():
    rng = np.random.default_rng(0)
    night = rng.integers(0, 60, (32, 48, 3)).astype(np.uint8)
    night[0, 0] = 255  # a street lamp: max scaling alone cannot stretch this frame
    assert float(to_tensor(night, "max").mean()) < 0.15
    lifted = to_tensor(night, "exposure")
    assert float(lifted.mean()) == pytest.approx(EXPOSURE_TARGET_MEAN, abs=0.08)
    flat = lifted.flatten().argsort()  # a tone curve: the order of intensities is kept
    assert torch.equal(to_tensor(night, "max").flatten()[flat].diff().sign().clamp(min=0),
                       lifted.flatten()[flat].diff().sign().clamp(min=0))
    day = rng.integers(90, 255, (32, 48, 3)).astype(np.uint8)
    assert torch.equal(to_tensor(day, "exposure"), to_tensor(day, "max"))
    assert float(to_tensor(np.zeros((4, 4, 3), np.uint8), "exposure").max()) == 0.0
    with pytest.raises(ValueError, match="unknown scaling 'auto'"):
        to_tensor(day, "auto")


@pytest.mark.parametrize("colour", ["rgb", "grey"])
@pytest.mark.parametrize("scaling", ["max", "exposure", "fixed"])
def test_training_and_inference_scale_an_image_the_same_way(scaling, colour):
    """The trainer works on float crops in [0, 1], the node on uint8 frames: same tones either way."""
    rng = np.random.default_rng(1)
    image = (rng.integers(0, 70, (16, 20, 3)) + np.arange(20)[None, :, None]).astype(np.uint8)
    trained = scale_input(image.astype(np.float32) / 255.0, scaling, colour)
    served = to_tensor(image, scaling, colour)[0].permute(1, 2, 0).numpy()
    assert np.allclose(trained, served, atol=1e-5) and trained.dtype == np.float32
    assert np.allclose(equalise_exposure(torch.from_numpy(trained)).numpy(), equalise_exposure(trained), atol=1e-6)


def test_grey_convention_feeds_the_luma_and_ignores_a_colour_cast():
    """A sodium-lamp cast (red up, blue down, same luma) changes nothing a grey model sees."""
    rng = np.random.default_rng(2)
    image = rng.integers(60, 200, (12, 16, 3)).astype(np.float32)
    grey = to_tensor(image.astype(np.uint8), "max", "grey")[0]
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    luma = image @ np.array([0.299, 0.587, 0.114], np.float32)
    assert np.allclose(grey[0].numpy(), luma / luma.max(), atol=1e-6)
    cast = image + 50.0 * np.array([0.114, 0.0, -0.299], np.float32) / 0.299  # redder, less blue, same luma
    assert np.allclose(to_tensor(cast, "exposure", "grey"), to_tensor(image, "exposure", "grey"), atol=1e-5)
    assert not torch.allclose(to_tensor(cast, "exposure"), to_tensor(image, "exposure"), atol=1e-2)
    with pytest.raises(ValueError, match="unknown colour"):
        to_tensor(image, "max", "hsv")
    with pytest.raises(ValueError, match="DVFConfig.colour"):
        DVFConfig(colour="bgr")


def test_grayscale_is_replicated_and_bad_arrays_are_refused():
    assert to_tensor(np.zeros((5, 6), np.uint8)).shape == (1, 3, 5, 6)
    with pytest.raises(ImageError, match="zero-size"):
        to_tensor(np.zeros((0, 6, 3), np.uint8))
    with pytest.raises(ImageError, match="expected H×W×3"):
        to_tensor(np.zeros((5, 6, 2), np.uint8))


def test_batch_equals_single_images():
    fe = FeatureExtractor.random(seed=2)
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (128, 160, 3), dtype=np.uint8) for _ in range(3)]
    batched = fe.extract_batch(images)
    for image, dense in zip(images, batched):
        assert torch.allclose(fe.extract(image), dense, atol=1e-5)


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(DejavuError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DejavuError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_channels_last_gives_same_descriptors():
    image = np.random.default_rng(3).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    nchw = FeatureExtractor(FeatureExtractor.random(seed=4).model, channels_last=False)
    weight = nchw.model.stem[1].conv.weight  # 3×3 over 16 channels: the two layouts differ
    assert weight.is_contiguous() and not weight.is_contiguous(memory_format=torch.channels_last)
    a = nchw.extract(image)
    fe = FeatureExtractor(FeatureExtractor.random(seed=4).model, channels_last=True)
    assert fe.model.stem[1].conv.weight.is_contiguous(memory_format=torch.channels_last)
    b = fe.extract(image)
    assert torch.allclose(b, a, atol=1e-5)


def test_unit_channels_matches_normalize_values_and_gradients():
    x = torch.randn(2, 10, 9, 7, dtype=torch.float64)
    x[0, :, 3, 4] = 0.0  # a zero descriptor stays zero, as F.normalize leaves it
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours, ref = unit_channels(a), F.normalize(b, dim=1)
    assert torch.allclose(ours, ref, atol=1e-12)
    assert float(ours.detach()[0, :, 3, 4].abs().max()) == 0.0
    weights = torch.randn_like(x)
    (ours * weights).sum().backward()
    (ref * weights).sum().backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-9)
    assert torch.allclose(unit_channels(x[0], dim=0), F.normalize(x[0], dim=0), atol=1e-12)


def test_config_round_trip_and_unknown_fields():
    cfg = DVFConfig.light(7)
    assert DVFConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown DVFConfig field"):
        DVFConfig.from_dict({"descriptor_dim": 3, "bogus": 1})


def test_the_head_commutes_with_the_final_resize():
    """DVF.forward applies the 1×1 head before the full-resolution resize: exact only for a linear,
    bias-free, 1×1 head."""
    model = DVF(DVFConfig.light()).eval()
    assert model.head.kernel_size == (1, 1) and model.head.bias is None
    features = torch.randn(1, model.cfg.stem_width, 17, 23)
    with torch.no_grad():
        late = model.head(torch.nn.functional.interpolate(features, size=(40, 52), mode="bilinear",
                                                          align_corners=True))
        early = torch.nn.functional.interpolate(model.head(features), size=(40, 52), mode="bilinear",
                                                align_corners=True)
    assert torch.allclose(late, early, atol=1e-5)


def test_bf16_on_the_cpu_runs_in_bf16_and_keeps_the_descriptors(shared_data):
    import cv2

    path = sorted((shared_data("tilde_webcam", "mexico")).glob("*.jpg"))[0]
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    fp32 = FeatureExtractor.from_config(FeatureConfig(device="cpu"))
    bf16 = FeatureExtractor.from_config(FeatureConfig(device="cpu", precision="bf16"))
    a, b = fp32.extract(image, size=(320, 240)), bf16.extract(image, size=(320, 240))
    assert b.dtype == torch.float32 and b.shape == a.shape
    assert float((a - b).abs().max()) > 1e-4  # autocast ran: bf16 rounding shows
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=0)
    assert float(cosine.mean()) > 0.9999 and float(cosine.quantile(0.01)) > 0.999
    # unit length again in float32, so the matchers take the map as it is instead of normalising it per keyframe
    assert float((b.norm(dim=0) - 1).abs().max()) < 1e-5
    from dejavu_ros.matching.dense_matching import unit_map

    assert unit_map(b) is b
