"""Every workflow factory builds the graph it documents (built, not run: the fast tier)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from t2quant.pipeline.workflows import (
    init_disc_features_wf,
    init_discs_wf,
    init_participant_wf,
    init_session_wf,
    init_t2map_wf,
)


def _edges(workflow) -> set[tuple[str, str]]:
    graph = workflow._create_flat_graph()
    return {(u.fullname, v.fullname) for u, v in graph.edges()}


def _reaches(workflow, source: str, target: str) -> bool:
    """Whether data flows from node ``source`` to node ``target`` (through identity nodes)."""
    import networkx as nx

    graph = workflow._create_flat_graph()
    by_name = {n.fullname: n for n in graph.nodes()}
    return nx.has_path(graph, by_name[source], by_name[target])


def _nodes(workflow) -> set[str]:
    return {n.fullname for n in workflow._create_flat_graph().nodes()}


def _fake_bids(root: Path, sessions=("baseline", "wk06"), n_echoes: int = 3) -> Path:
    """Empty files with the right names: enough to collect and build, not to run."""
    for ses in sessions:
        anat = root / "sub-01" / f"ses-{ses}" / "anat"
        anat.mkdir(parents=True)
        for n in range(1, n_echoes + 1):
            (anat / f"sub-01_ses-{ses}_echo-{n}_MESE.nii.gz").touch()
            (anat / f"sub-01_ses-{ses}_echo-{n}_MESE.json").write_text(
                json.dumps({"EchoTime": 0.01 * n})
            )
    (root / "sub-01" / "ses-baseline" / "anat" / "sub-01_ses-baseline_T2w.nii.gz").touch()
    return root


@pytest.mark.parametrize("method", ["epg", "loglinear", "monoexp_offset"])
@pytest.mark.parametrize("threads", [1, 2])
def test_t2map_wf(method, threads):
    wf = init_t2map_wf(method=method, omp_nthreads=threads, name="t2")
    fit = wf.get_node("fit_t2")
    assert fit.inputs.method == method and fit.n_procs == threads
    assert fit.inputs.num_threads == threads
    assert ("t2.inputnode", "t2.fit_t2") in _edges(wf)
    assert ("t2.fit_t2", "t2.outputnode") in _edges(wf)


@pytest.mark.parametrize("imported", [False, True])
def test_discs_wf(tmp_path, imported):
    mask = tmp_path / "sub-01_ses-1_dseg.nii.gz"
    mask.touch()
    wf = init_discs_wf(discs_from=mask if imported else None, scheme="spineps", name="d")
    segment = wf.get_node("segment")
    assert segment.inputs.scheme == "spineps"
    assert (segment.inputs.discs_from == str(mask)) is imported
    assert {("d.inputnode", "d.seg_image"), ("d.seg_image", "d.segment"),
            ("d.segment", "d.outputnode")} <= _edges(wf)  # fmt: skip


@pytest.mark.parametrize("thresholds", [False, True])
def test_disc_features_wf(tmp_path, thresholds):
    path = tmp_path / "t.json"
    path.write_text("{}")
    wf = init_disc_features_wf(thresholds=path if thresholds else None, name="f")
    node = wf.get_node("features")
    assert (node.inputs.thresholds == str(path)) is thresholds


def test_session_wf_passes_files_not_folders(tmp_path):
    from t2quant.io.bids import collect_session

    bids = _fake_bids(tmp_path / "bids")
    session = collect_session(bids, "01", "baseline")
    assert [p.name for p in session.echoes] == [
        f"sub-01_ses-baseline_echo-{n}_MESE.nii.gz" for n in (1, 2, 3)
    ]
    assert len(session.sidecars) == 3 and session.t2w.name == "sub-01_ses-baseline_T2w.nii.gz"
    wf = init_session_wf(session=session, output_dir=tmp_path / "out", bids_dir=bids, name="s")
    inputnode = wf.get_node("inputnode")
    assert inputnode.inputs.echoes == [str(p) for p in session.echoes]
    assert inputnode.inputs.sidecars == [str(p) for p in session.sidecars]
    sink = wf.get_node("ds_session")
    assert (sink.inputs.participant, sink.inputs.session) == ("01", "baseline")
    assert sink.inputs.base_directory == str((tmp_path / "out").resolve())
    assert _reaches(wf, "s.t2map_wf.fit_t2", "s.discs_wf.seg_image")  # the map is the grid
    assert _reaches(wf, "s.discs_wf.segment", "s.disc_features_wf.features")
    assert _reaches(wf, "s.disc_features_wf.features", "s.ds_session")
    assert not _reaches(wf, "s.discs_wf.segment", "s.t2map_wf.fit_t2")


@pytest.mark.parametrize("sessions", [None, ["wk06"]])
def test_participant_wf_has_a_session_per_anat_folder_and_one_report(tmp_path, sessions):
    bids = _fake_bids(tmp_path / "bids")
    wf = init_participant_wf(bids_dir=bids, participant="sub-01", output_dir=tmp_path / "out",
                             sessions=sessions)  # fmt: skip
    nodes = _nodes(wf)
    fits = sorted(n for n in nodes if n.endswith("fit_t2"))
    expected = ["baseline", "wk06"] if sessions is None else sessions
    assert fits == [f"sub_01_wf.ses_{s}_wf.t2map_wf.fit_t2" for s in expected]
    assert ("sub_01_wf.report", "sub_01_wf.ds_report") in _edges(wf)


def test_participant_wf_with_discs_from_finds_each_session_mask(tmp_path):
    bids = _fake_bids(tmp_path / "bids")
    masks = tmp_path / "masks"
    masks.mkdir()
    for ses in ("baseline", "wk06"):
        (masks / f"sub-01_ses-{ses}_desc-manual_dseg.nii.gz").touch()
    wf = init_participant_wf(bids_dir=bids, participant="01", output_dir=tmp_path / "out",
                             discs_from=masks)  # fmt: skip
    for ses in ("baseline", "wk06"):
        node = wf.get_node(f"ses_{ses}_wf.discs_wf.segment")
        assert Path(node.inputs.discs_from).name == f"sub-01_ses-{ses}_desc-manual_dseg.nii.gz"


def test_participant_wf_errors_name_the_folder(tmp_path):
    from t2quant.errors import InputError

    bids = _fake_bids(tmp_path / "bids")
    with pytest.raises(InputError, match=r"sub-01: no ses-\*/anat folders .*asked: \['x'\]"):
        init_participant_wf(bids_dir=bids, participant="01", output_dir=tmp_path, sessions=["x"])
    with pytest.raises(InputError, match=r"--discs-from .*: no sub-01_ses-baseline"):
        init_participant_wf(bids_dir=bids, participant="01", output_dir=tmp_path,
                            discs_from=tmp_path)  # fmt: skip
