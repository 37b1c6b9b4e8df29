"""t2quant: disc-level T2 evidence from lumbar multi-echo spin-echo MRI.

How data flows, from raw echoes to the group's statistics (``docs/architecture.md`` has the
picture with every file)::

    BIDS raw: sub-X/ses-Y/anat/*_echo-N_MESE.nii.gz (+ .json), *_T2w.nii.gz
      |  io.bids.collect_data            the session's files, collected once
      v
    pipeline (Nipype: participant level, t2quant.pipeline.participant)
      |  relaxometry   fit_t2 (arrays)           -> relaxometry.files  -> *_T2map, *_T2ms, ...
      |  segmentation  segment_discs (arrays)     -> segmentation.files -> *_dseg, *_discs
      |  features      disc_features (arrays; disc patches -> appearance network, onnxruntime)
      |                                           -> features.files (measure a session)
      |  pfirrmann     suggest_pfirrmann (table)  -> pfirrmann.files    -> *_discfeatures.tsv
      |  reports.participant                                            -> sub-X.html
      v
    group level (t2quant.pipeline.group)
      |  group.table   build_disc_table (tables)  -> discs.tsv/.parquet/.json
      |  group.stats   run_moderators (table)     -> moderators.tsv, forest plots, summary
      |  validation    agreement with manual grades; a synthetic study's ground truth
      v  reports.group                                                  -> group.html

The packages below ``pipeline`` are plain functions over arrays and tables (the cores) with
one ``files`` module each that reads and writes; ``io`` owns every file format and every BIDS
name; ``synth`` simulates studies with known truth; ``cli`` is the command line and nothing
imports it. ``tests/test_architecture.py`` enforces the import directions.
"""

__version__ = "0.1.0.dev0"
