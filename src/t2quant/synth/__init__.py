"""Synthetic lumbar multi-echo spin-echo data with known truth.

Public API: :func:`epg_mese_signal` (EPG physics), :func:`make_spine_phantom` (geometric
phantom), :func:`simulate_mese` / :func:`simulate_t2w` (acquisition) and the presets in
:mod:`t2quant.synth.protocol`.  Importing this package has no side effects.
"""

from t2quant.relaxometry.epg import epg_mese_signal, epg_mese_signal_b1
from t2quant.synth.acquisition import MESEAcquisition, simulate_mese, simulate_t2w
from t2quant.synth.phantom import SpinePhantom, make_spine_phantom
from t2quant.synth.protocol import CLINICAL, DEMO, PRESETS, Protocol

__all__ = [
    "CLINICAL",
    "DEMO",
    "PRESETS",
    "MESEAcquisition",
    "Protocol",
    "SpinePhantom",
    "epg_mese_signal",
    "epg_mese_signal_b1",
    "make_spine_phantom",
    "simulate_mese",
    "simulate_t2w",
]
