"""Export trained weights to ONNX and check onnxruntime against PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from t2quant.training.model import WIDTHS, UNet

__all__ = ["compare", "export"]

OPSET = 17


def _load(weights: Path, widths: tuple[int, ...]) -> UNet:
    model = UNet(widths)
    model.load_state_dict(torch.load(weights))
    return model.eval()


def export(weights: Path, out: Path, widths: tuple[int, ...] = WIDTHS) -> Path:
    """Write an ONNX model (input ``image``, output ``logits``; dynamic batch, height and
    width; opset 17) of the state dict ``weights``."""
    model = _load(weights, widths)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        model, torch.zeros(1, 1, 224, 160), str(out), input_names=["image"],
        output_names=["logits"], opset_version=OPSET, dynamo=False,
        dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h", 3: "w"}},
    )  # fmt: skip
    return out


def compare(weights: Path, onnx_path: Path, widths: tuple[int, ...] = WIDTHS) -> dict:
    """Largest logit difference and argmax agreement, torch vs onnxruntime, on a seeded
    random ``(2, 1, 256, 192)`` input."""
    import onnxruntime as ort

    model = _load(weights, widths)
    x = np.random.default_rng(0).normal(0.3, 0.4, (2, 1, 256, 192)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": x})[0]
    return {
        "max_abs_logit_diff": float(np.abs(ref - got).max()),
        "argmax_agreement": float((ref.argmax(1) == got.argmax(1)).mean()),
        "bytes": onnx_path.stat().st_size,
    }
