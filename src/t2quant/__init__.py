"""t2quant: disc-level T2 evidence from lumbar multi-echo spin-echo MRI."""

__version__ = "0.1.0.dev0"
