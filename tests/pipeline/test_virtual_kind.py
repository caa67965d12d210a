"""``[data] kind = "virtual"``: the mesh the maps live on follows the virtual NSD's options."""

from __future__ import annotations

from types import SimpleNamespace

from brainalign.pipeline.data_kinds import virtual as kind


def test_full_fsaverage_mesh_comes_from_the_dataset(tmp_path):
    """With options.mesh = "fsaverage" the maps live on full fsaverage, read from the written
    dataset's own fsaverage folder; a relative fs_dir is taken against the config's folder."""
    data = kind.VirtualDataConfig(
        root=tmp_path / "v", options={"mesh": "fsaverage", "fs_dir": "spheres"}
    )
    data = kind.resolve(data, tmp_path, tmp_path / "out")
    assert data.options["fs_dir"] == str(tmp_path / "spheres")
    task, mesh = kind.plan(SimpleNamespace(data=data, space="fsaverage"), [], {})
    assert task.params["options"]["mesh"] == "fsaverage"
    assert mesh == {
        "mesh": "fsaverage",
        "surface": "pial",
        "fs_dir": str(tmp_path / "v" / "nsddata" / "freesurfer" / "fsaverage"),
    }
    data5 = kind.resolve(kind.VirtualDataConfig(), tmp_path, tmp_path / "out")
    _, mesh5 = kind.plan(SimpleNamespace(data=data5, space="fsaverage"), [], {})
    assert mesh5 == {"mesh": "fsaverage5", "surface": "pial", "fs_dir": None}
