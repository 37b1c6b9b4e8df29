"""Retraining the learned disc segmenter (``make train-segmenter``); never used at run time.

Images are generated only from the synthetic phantom's label maps (SynthSeg-style domain
randomisation); no real image or label is used. The pipeline: :mod:`.bank` (phantom anatomies
-> cached 1 mm sagittal label slices), :mod:`.generator` (random images from them, NumPy and
SciPy only), :mod:`.model` / :mod:`.train` / :mod:`.export` (PyTorch: the U-Net, stage-1 and
stage-2 training, ONNX export into ``t2quant/data/discseg.onnx``), :mod:`.pipeline` (all of
it in one command). PyTorch and onnx come from the ``train`` extra; importing this package,
:mod:`.labels`, :mod:`.bank` or :mod:`.generator` needs neither. Nothing imports this package.
"""
