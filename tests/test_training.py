"""The segmenter's training code without training: the label-map bank, the image generator
(NumPy/SciPy only: runs everywhere), the U-Net and its ONNX export (only where PyTorch is
installed, i.e. the ``train`` extra), and the shipped weights."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

from t2quant.segmentation.network import N_CLASSES, Cls, session
from t2quant.training.bank import build_entry
from t2quant.training.generator import PATCH, STAGE1, STAGE2, Bank, sample


@pytest.fixture(scope="module")
def entry():
    """The mid-sagittal slice of bank entry 1000 (the shipped model's first anatomy)."""
    return build_entry(1000, n_slices=1)


@pytest.fixture(scope="module")
def bank(entry):
    return Bank([entry["labels"]], [entry["inst"]], [entry["base"]])


def test_a_bank_entry_reaches_t6_and_holds_every_class(entry):
    from t2quant.training.labels import label_to_class

    assert entry["vertebrae"][0] == "T6" and entry["vertebrae"][-1] == "S4"
    assert entry["labels"].shape == entry["inst"].shape == entry["base"].shape
    assert entry["labels"].dtype == np.uint8 and entry["base"].dtype == np.float16
    assert set(np.unique(label_to_class(entry["labels"]))) == set(range(N_CLASSES))


@pytest.mark.parametrize("stage", [STAGE1, STAGE2])
def test_the_generator_gives_normalised_images_and_class_targets(bank, stage):
    pairs = [sample(bank, np.random.default_rng([7, i]), stage) for i in range(6)]
    seen = set()
    for image, target in pairs:
        assert image.shape == target.shape == PATCH
        assert image.dtype == np.float32 and target.dtype == np.uint8
        assert np.isfinite(image).all() and -1.0 < image.min() and image.max() < 3.0
        assert target.max() < N_CLASSES
        seen |= set(np.unique(target).tolist())
    assert {Cls.BACKGROUND, Cls.DISC, Cls.BODY} <= seen
    again = sample(bank, np.random.default_rng([7, 0]), stage)  # seeded: reproducible
    np.testing.assert_array_equal(again[0], pairs[0][0])
    np.testing.assert_array_equal(again[1], pairs[0][1])


def test_the_unet_exports_to_onnx_that_matches_torch(tmp_path, bank):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from t2quant.training.export import compare, export
    from t2quant.training.model import UNet
    from t2quant.training.train import batch, dice_loss

    torch.manual_seed(0)
    model = UNet()
    x, y = batch(bank, np.random.default_rng(3), 2, stage2=False)
    logits = model(x)
    assert logits.shape == (2, N_CLASSES, *PATCH)
    assert 0.0 < float(dice_loss(logits, y).detach()) <= 1.0
    torch.save(model.state_dict(), tmp_path / "model.pt")
    export(tmp_path / "model.pt", tmp_path / "model.onnx")
    check = compare(tmp_path / "model.pt", tmp_path / "model.onnx")
    assert check["max_abs_logit_diff"] < 1e-3 and check["argmax_agreement"] > 0.999


def test_the_shipped_weights_are_small_and_run_in_onnxruntime():
    size = len(resources.files("t2quant.data").joinpath("discseg.onnx").read_bytes())
    assert size <= 20 * 2**20
    net = session(1)
    assert [i.name for i in net.get_inputs()] == ["image"]
    out = net.run(None, {"image": np.zeros((1, 1, 64, 48), np.float32)})[0]
    assert out.shape == (1, N_CLASSES, 64, 48)
