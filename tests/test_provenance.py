"""Sidecar provenance rewritten from scratch paths to BIDS URIs."""

from __future__ import annotations

from pathlib import Path

from t2quant.io.provenance import resolve_bids_uri, to_bids_uris


def test_scratch_paths_become_bids_uris_or_file_names():
    sidecar = {
        "Sources": {
            "labels": "/work/wf/segment/sub-01_dseg.nii.gz",
            "echoes": ["/data/bids/sub-01/anat/sub-01_echo-1_MESE.nii.gz", "relative/x.nii"],
            "t2w": "/work/wf/features/sub-01_T2w.nii.gz",
        },
        "RepetitionTime": 2.5,
    }
    out = to_bids_uris(
        sidecar,
        renamed={"/work/wf/segment/sub-01_dseg.nii.gz": "sub-01/anat/sub-01_dseg.nii.gz"},
        datasets={"": Path("/out/t2quant"), "raw": Path("/data/bids")},
    )
    assert out == {
        "Sources": {
            "labels": "bids::sub-01/anat/sub-01_dseg.nii.gz",
            "echoes": ["bids:raw:sub-01/anat/sub-01_echo-1_MESE.nii.gz", "relative/x.nii"],
            "t2w": "sub-01_T2w.nii.gz",
        },
        "RepetitionTime": 2.5,
    }


def test_bids_uris_resolve_through_the_dataset_links(tmp_path):
    (tmp_path / "dataset_description.json").write_text(
        '{"DatasetLinks": {"raw": "file:///data/my%20bids"}}'
    )
    assert resolve_bids_uri("bids::sub-01/a.nii.gz", tmp_path) == tmp_path / "sub-01/a.nii.gz"
    assert resolve_bids_uri("bids:raw:sub-01/b.nii.gz", tmp_path) == Path(
        "/data/my bids/sub-01/b.nii.gz"
    )
    assert resolve_bids_uri("bids:other:c.nii", tmp_path) is None
    assert resolve_bids_uri("/abs/d.nii", tmp_path) == Path("/abs/d.nii")
