"""Retraining the learned disc segmenter (``make train-segmenter``); never used at run time.

Stages 1 and 2 train on images generated only from the synthetic phantom's label maps
(SynthSeg-style domain randomisation); a last step fine-tunes on real volumes with manual
disc masks. The pipeline: :mod:`.bank` (phantom anatomies -> cached 1 mm sagittal label
slices), :mod:`.generator` (random images from them, NumPy and SciPy only), :mod:`.real`
(real volumes as training pairs: manual discs, pseudo-labels elsewhere; NumPy and SciPy
only), :mod:`.model` / :mod:`.train` / :mod:`.finetune` / :mod:`.export` (PyTorch: the
U-Net, stage-1 and stage-2 training, fine-tuning, ONNX export into
``t2quant/data/discseg.onnx``), ``python -m t2quant.training`` (all of it in one command).
PyTorch and onnx come from the ``train`` extra; importing this package, :mod:`.labels`,
:mod:`.bank`, :mod:`.generator` or :mod:`.real` needs neither. Nothing imports this package.
"""
