"""The methods boilerplate: ``OUT/logs/CITATION.md``, ``.bib`` and ``.html``.

The text describes what actually ran, from a record of the run (``OUT/logs/citation.json``:
software versions, the fit method and its settings, the segmentation, the grading, and,
once the group level has run, the mixed model and its inference). The participant level
writes the record; the group level adds its part; both rewrite the three files, so the text
always matches the last run. Paste it into a paper's methods; the references are in the
``.bib`` file.
"""

from __future__ import annotations

import html
import json
import platform
from pathlib import Path

from t2quant.io import atomic_path, write_json

__all__ = ["REFERENCES", "citation_record", "methods_markdown", "write_citation"]

REFERENCES: dict[str, str] = {
    "t2quant": "@misc{t2quant,\n  title = {t2quant: disc-level T2 evidence from lumbar "
    "multi-echo spin-echo MRI},\n  note = {Version {version}}\n}",
    "nipype": "@article{nipype,\n  author = {Gorgolewski, Krzysztof and Burns, Christopher D. "
    "and Madison, Cindee and others},\n  title = {Nipype: a flexible, lightweight and "
    "extensible neuroimaging data processing framework in Python},\n  journal = {Frontiers in "
    "Neuroinformatics},\n  volume = {5},\n  pages = {13},\n  year = {2011},\n  "
    "doi = {10.3389/fninf.2011.00013}\n}",
    "bids": "@article{bids,\n  author = {Gorgolewski, Krzysztof J. and Auer, Tibor and Calhoun, "
    "Vince D. and others},\n  title = {The brain imaging data structure, a format for "
    "organizing and describing outputs of neuroimaging experiments},\n  journal = {Scientific "
    "Data},\n  volume = {3},\n  pages = {160044},\n  year = {2016},\n  "
    "doi = {10.1038/sdata.2016.44}\n}",
    "lebel2010": "@article{lebel2010,\n  author = {Lebel, R. Marc and Wilman, Alan H.},\n  "
    "title = {Transverse relaxometry with stimulated echo compensation},\n  journal = "
    "{Magnetic Resonance in Medicine},\n  volume = {64},\n  number = {4},\n  pages = "
    "{1005--1014},\n  year = {2010},\n  doi = {10.1002/mrm.22487}\n}",
    "weigel2015": "@article{weigel2015,\n  author = {Weigel, Matthias},\n  title = {Extended "
    "phase graphs: dephasing, {RF} pulses, and echoes - pure and simple},\n  journal = "
    "{Journal of Magnetic Resonance Imaging},\n  volume = {41},\n  number = {2},\n  pages = "
    "{266--295},\n  year = {2015},\n  doi = {10.1002/jmri.24619}\n}",
    "golub1973": "@article{golub1973,\n  author = {Golub, Gene H. and Pereyra, Victor},\n  title "
    "= {The differentiation of pseudo-inverses and nonlinear least squares problems whose "
    "variables separate},\n  journal = {SIAM Journal on Numerical Analysis},\n  volume = {10},"
    "\n  number = {2},\n  pages = {413--432},\n  year = {1973},\n  doi = {10.1137/0710036}\n}",
    "miller1993": "@article{miller1993,\n  author = {Miller, A. J. and Joseph, P. M.},\n  title "
    "= {The use of power images to perform quantitative analysis on low {SNR} {MR} images},\n  "
    "journal = {Magnetic Resonance Imaging},\n  volume = {11},\n  number = {7},\n  pages = "
    "{1051--1056},\n  year = {1993},\n  doi = {10.1016/0730-725X(93)90225-3}\n}",
    "pfirrmann2001": "@article{pfirrmann2001,\n  author = {Pfirrmann, Christian W. A. and "
    "Metzdorf, Alexander and Zanetti, Marco and Hodler, Juerg and Boos, Norbert},\n  title = "
    "{Magnetic resonance classification of lumbar intervertebral disc degeneration},\n  "
    "journal = {Spine},\n  volume = {26},\n  number = {17},\n  pages = {1873--1878},\n  year "
    "= {2001},\n  doi = {10.1097/00007632-200109010-00011}\n}",
    "bates2015": '@article{bates2015,\n  author = {Bates, Douglas and M{\\"a}chler, Martin and '
    "Bolker, Ben and Walker, Steve},\n  title = {Fitting linear mixed-effects models using "
    "{lme4}},\n  journal = {Journal of Statistical Software},\n  volume = {67},\n  number = "
    "{1},\n  pages = {1--48},\n  year = {2015},\n  doi = {10.18637/jss.v067.i01}\n}",
    "kuznetsova2017": "@article{kuznetsova2017,\n  author = {Kuznetsova, Alexandra and "
    "Brockhoff, Per B. and Christensen, Rune H. B.},\n  title = {{lmerTest} package: tests in "
    "linear mixed effects models},\n  journal = {Journal of Statistical Software},\n  volume = "
    "{82},\n  number = {13},\n  pages = {1--26},\n  year = {2017},\n  "
    "doi = {10.18637/jss.v082.i13}\n}",
    "kenward1997": "@article{kenward1997,\n  author = {Kenward, Michael G. and Roger, James "
    "H.},\n  title = {Small sample inference for fixed effects from restricted maximum "
    "likelihood},\n  journal = {Biometrics},\n  volume = {53},\n  number = {3},\n  pages = "
    "{983--997},\n  year = {1997},\n  doi = {10.2307/2533558}\n}",
    "benjamini1995": "@article{benjamini1995,\n  author = {Benjamini, Yoav and Hochberg, "
    "Yosef},\n  title = {Controlling the false discovery rate: a practical and powerful "
    "approach to multiple testing},\n  journal = {Journal of the Royal Statistical Society: "
    "Series B},\n  volume = {57},\n  number = {1},\n  pages = {289--300},\n  year = {1995},\n"
    "  doi = {10.1111/j.2517-6161.1995.tb02031.x}\n}",
    "vandergraaf2024": "@article{vandergraaf2024,\n  author = {van der Graaf, Jasper W. and "
    "van Hooff, Miranda L. and Buckens, Constantinus F. M. and others},\n  title = {Lumbar "
    "spine segmentation in {MR} images: a dataset and a public benchmark},\n  journal = "
    "{Scientific Data},\n  volume = {11},\n  pages = {264},\n  year = {2024},\n  "
    "doi = {10.1038/s41597-024-03090-w}\n}",
}

FIT_TEXT = {
    "epg": ("an extended phase graph (EPG) model of the multi-echo spin-echo train, fitting T2, "
            "the amplitude and the refocusing flip-angle scale (B1) per voxel to compensate "
            "stimulated echoes [@lebel2010; @weigel2015], with T1 fixed at {t1_ms:g} ms",
            ["lebel2010", "weigel2015"]),
    "loglinear": ("a weighted log-linear least-squares fit of a mono-exponential decay, leaving "
                  "out samples under the noise floor", []),
    "monoexp": ("a nonlinear least-squares mono-exponential fit by variable projection "
                "[@golub1973]", ["golub1973"]),
    "monoexp_offset": ("a nonlinear least-squares mono-exponential fit with a constant offset by "
                       "variable projection [@golub1973]", ["golub1973"]),
    "rician": ("a noise-floor corrected mono-exponential fit to the squared signal "
               "[@miller1993]", ["miller1993"]),
}  # fmt: skip
INFERENCE_TEXT = {
    "wald": ("Wald z tests and normal-theory 95% confidence intervals", []),
    "satterthwaite": ("t tests and F tests with Satterthwaite's degrees of freedom, as "
                      "lmerTest reports them [@kuznetsova2017]", ["kuznetsova2017"]),
    "kenward-roger": ("t tests and F tests with the Kenward-Roger adjustment [@kenward1997]",
                      ["kenward1997"]),
}  # fmt: skip


def citation_record(**what_ran) -> dict:
    """The record of a run: the software, and what each stage was told (plain JSON)."""
    import nipype
    import numpy
    import scipy

    from t2quant import __version__

    return {
        "software": {
            "t2quant": __version__,
            "python": platform.python_version(),
            "nipype": nipype.__version__,
            "numpy": numpy.__version__,
            "scipy": scipy.__version__,
        },
        **what_ran,
    }


def methods_markdown(record: dict) -> tuple[str, list[str]]:
    """The methods text (Markdown with ``[@key]`` citations) and the keys it cites."""
    keys = ["t2quant", "bids", "nipype"]
    sw = record["software"]
    parts = [
        f"Disc-level T2 was computed with t2quant {sw['t2quant']} [@t2quant] (Python "
        f"{sw['python']}, NumPy {sw['numpy']}, SciPy {sw['scipy']}), which reads the data as "
        f"BIDS [@bids] and runs its workflows with Nipype {sw['nipype']} [@nipype]."
    ]
    participant = record.get("participant")
    if participant:
        parts += _participant_paragraphs(participant, keys)
    group = record.get("group")
    if group:
        parts.append(_group_paragraph(group, keys))
    return "\n\n".join(parts) + "\n", list(dict.fromkeys(keys))


def _participant_paragraphs(p: dict, keys: list[str]) -> list[str]:
    text, refs = FIT_TEXT[p["t2_method"]]
    keys += refs
    fit = (
        f"For each session, T2 maps were fitted voxel by voxel to the echoes of the multi-echo "
        f"spin-echo series with {text.format(t1_ms=p.get('t1_ms', 1000.0))}; voxels outside a "
        "two-class threshold of the log first echo were not fitted, and failed fits were left "
        "out of every average, with their share reported."
    )
    if p.get("discs_from"):
        seg = (f"Each disc's mask was imported from {p['discs_from']} ({p['discs_scheme']} "
               "labels) and mapped to the levels T11/T12 to L5/S1.")  # fmt: skip
    else:
        seg = (f"Each intervertebral disc was segmented and its level (T11/T12 to L5/S1) named "
               f"by the {p['segmentation']}; sessions whose level count could not be anchored "
               "were flagged, not renumbered.")  # fmt: skip
    keys.append("pfirrmann2001")
    if p.get("thresholds"):
        grading = f"a grader calibrated to the lab's own grades ({p['thresholds']})"
    else:
        keys.append("vandergraaf2024")
        grading = (
            "t2quant's default ordinal (proportional-odds) grader, fitted on radiologists' "
            "grades of the SPIDER lumbar MRI data set [@vandergraaf2024]"
        )
    grade = (
        "Whole-disc T2 was the mean over each disc mask. Each disc's Pfirrmann grade "
        "[@pfirrmann2001] was suggested from features of the image (a small convolutional "
        "network's reading of the disc's mid-sagittal appearance as a grade, trained on "
        "radiologists' grades of SPIDER slices; nucleus signal relative to CSF and to the "
        "adjacent vertebral bodies, nucleus-annulus contrast, homogeneity, disc height) with "
        f"{grading}; every suggestion records the criteria that decided it."
    )
    return [f"{fit} {seg}", grade]


def _group_paragraph(g: dict, keys: list[str]) -> str:
    text, refs = INFERENCE_TEXT.get(g.get("inference", "wald"), INFERENCE_TEXT["wald"])
    keys += ["bates2015", *refs]
    estimation = "restricted maximum likelihood" if g.get("reml", True) else "maximum likelihood"
    moderators = ", ".join(g.get("moderators", [])) or "none"
    fdr = ""
    if g.get("fdr"):
        keys.append("benjamini1995")
        fdr = (" P values of the subgroup tests were adjusted with the Benjamini-Hochberg "
               "procedure [@benjamini1995].")  # fmt: skip
    return (
        f"The outcome ({g.get('outcome', 't2_mean_ms')}) was analysed at the disc level with "
        "linear mixed models with crossed random intercepts for participant and spinal level and "
        f"a random intercept per disc, fitted by {estimation} as lme4 fits them [@bates2015], "
        f"with {text}. Group-by-time effects (the net difference between groups in the change "
        f"from baseline) were estimated overall and within the subgroups of each moderator "
        f"({moderators}); these subgroup analyses are exploratory.{fdr}"
    )


def _html(markdown: str, keys: list[str]) -> str:
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in markdown.strip().split("\n\n"))
    refs = "".join(f"<li><pre>{html.escape(REFERENCES[k])}</pre></li>" for k in keys)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>t2quant methods</title></head>"
        f"<body><h1>Methods</h1>{paragraphs}<h2>References</h2><ol>{refs}</ol></body></html>"
    )


def write_citation(logs_dir: Path, update: dict) -> dict[str, Path]:
    """Merge ``update`` into ``logs_dir/citation.json`` and rewrite ``CITATION.md``, ``.bib``
    and ``.html`` from it; returns the paths written."""
    logs_dir = Path(logs_dir)
    path = logs_dir / "citation.json"
    record = json.loads(path.read_text()) if path.is_file() else {}
    record = citation_record(**{k: v for k, v in (record | update).items() if k != "software"})
    markdown, keys = methods_markdown(record)
    version = record["software"]["t2quant"]
    bib = "\n\n".join(REFERENCES[k].replace("{version}", version) for k in keys) + "\n"
    out = {"record": write_json(record, path)}
    for name, text in (("CITATION.md", "# Methods\n\n" + markdown), ("CITATION.bib", bib),
                       ("CITATION.html", _html(markdown, keys))):  # fmt: skip
        with atomic_path(logs_dir / name) as tmp:
            tmp.write_text(text)
        out[name] = logs_dir / name
    return out
