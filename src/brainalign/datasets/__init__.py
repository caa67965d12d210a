"""Data: the real NSD layout, the virtual NSD, stimuli and cortical surfaces."""

from brainalign.datasets.base import Stimuli, SubjectResponses
from brainalign.datasets.coco import load_coco_folder, read_coco_captions, read_coco_instances
from brainalign.datasets.nsd import (
    ImageBrick,
    design_subjects,
    list_subjects,
    load_nsd,
    load_stimuli,
    nsd_coco_ids,
    prepare_nsd,
    read_responses,
    read_shared_ids,
    special_ids,
    subject_conditions,
)
from brainalign.datasets.rdms import (
    RdmDataset,
    import_rdm_dataset,
    load_rdm_dataset,
    write_rdm_dataset,
)
from brainalign.datasets.scenes import SceneSet, make_scenes, render_scene
from brainalign.datasets.surfaces import (
    Mesh,
    load_fsaverage,
    load_surface,
    load_surface_atlas,
    mesh_adjacency,
    read_hemisphere_maps,
    read_surface_map,
    subsample_to_mesh,
    write_hemisphere_maps,
    write_surface_map,
)
from brainalign.datasets.virtual import make_virtual_nsd, virtual_planted_signal

__all__ = [
    "ImageBrick",
    "Mesh",
    "RdmDataset",
    "import_rdm_dataset",
    "load_rdm_dataset",
    "write_rdm_dataset",
    "SceneSet",
    "Stimuli",
    "SubjectResponses",
    "list_subjects",
    "load_coco_folder",
    "load_fsaverage",
    "load_nsd",
    "load_stimuli",
    "load_surface",
    "load_surface_atlas",
    "make_scenes",
    "make_virtual_nsd",
    "virtual_planted_signal",
    "mesh_adjacency",
    "prepare_nsd",
    "read_coco_captions",
    "read_coco_instances",
    "read_hemisphere_maps",
    "read_responses",
    "read_shared_ids",
    "read_surface_map",
    "render_scene",
    "design_subjects",
    "nsd_coco_ids",
    "special_ids",
    "subject_conditions",
    "subsample_to_mesh",
    "write_hemisphere_maps",
    "write_surface_map",
]
