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


def test_real_targets_keep_the_manual_discs_and_drop_the_network_overreach():
    """Manual disc -> disc; the network's disc within 8 mm of a manual disc -> its best other
    class; its disc far from every manual disc (an unlabelled level) stays disc."""
    from t2quant.segmentation.network import Cls
    from t2quant.training.real import pseudo_target

    probs = np.zeros((len(Cls), 1, 40, 1), np.float32)
    probs[Cls.BODY] = 0.3  # the best non-disc class everywhere
    probs[Cls.DISC, 0, :30, 0] = 0.6  # the network paints rows 0..29 as disc
    manual = np.zeros((1, 40, 1), np.int16)
    manual[0, 20:25, 0] = 1  # the rater drew rows 20..24
    target = pseudo_target(probs, manual, np.ones(3))
    row = target[0, :, 0]
    assert (row[20:25] == Cls.DISC).all()  # drawn
    assert (row[12:20] == Cls.BODY).all() and (row[25:30] == Cls.BODY).all()  # overreach
    assert (row[:12] == Cls.DISC).all()  # more than 8 mm away: an unlabelled disc
    assert (row[30:] == Cls.BODY).all()


def test_a_real_sample_is_a_normalised_patch_with_class_targets():
    from t2quant.segmentation.network import Cls
    from t2quant.training.generator import PATCH
    from t2quant.training.real import RealVolume, real_sample

    rng = np.random.default_rng(0)
    image = rng.uniform(50, 150, (120, 90, 3)).astype(np.float32)
    target = np.full(image.shape, Cls.BODY, np.uint8)
    target[50:60] = Cls.DISC
    manual = (target == Cls.DISC).astype(np.int16)
    vol = RealVolume("toy", image, manual, target, np.full(3, 1 / 3))
    img, lab = real_sample([vol], rng)
    assert img.shape == lab.shape == PATCH and img.dtype == np.float32
    inside = lab > 0  # the source slice; zero-filled outside it
    assert set(np.unique(lab)) <= {Cls.BACKGROUND, Cls.BODY, Cls.DISC}
    outside = np.unique(img[~inside])  # zero-filled, then normalised as at run time
    assert outside.size == 1 and np.mean(img[inside] > outside[0]) > 0.99
    assert -0.5 <= img.min() and img.max() <= 2.0
    assert np.quantile(img[inside], 0.5) == pytest.approx(0.5, abs=0.25)


def test_the_appearance_network_trains_exports_and_matches_torch(tmp_path):
    """Phantom discs (the training code's own synthetic part) through two training epochs,
    ONNX export and scoring; only where PyTorch is installed."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from t2quant.training import grader

    discs = grader.phantom_discs(1)
    assert len(discs) == 7 and {d.grade for d in discs} <= {1, 2, 3, 4, 5}
    assert discs[0].patches.shape == (1 + grader.N_AUGMENTED, 2, 32, 64)
    first = grader.train_network(discs, seed=0, epochs=2)
    again = grader.train_network(discs, seed=0, epochs=2)
    for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # seeded: the same weights twice
    check = grader.export(first, tmp_path / "appearance.onnx")
    assert check["max_abs_logit_diff"] < 1e-4
    score = grader.scores(first, np.stack([d.patches[0] for d in discs]))
    assert np.all((score >= 1.0) & (score <= 5.0))


def test_the_shipped_appearance_network_is_small_and_takes_disc_patches():
    from t2quant.features.appearance import WEIGHTS, _session

    size = len(resources.files("t2quant.data").joinpath(WEIGHTS).read_bytes())
    assert size <= 2**20
    net = _session()
    assert [i.name for i in net.get_inputs()] == ["patch"]
    out = net.run(None, {"patch": np.zeros((3, 2, 32, 64), np.float32)})[0]
    assert out.shape == (3, 4)
