import nibabel as nib
import numpy as np
import pytest
from scipy.ndimage import map_coordinates

from brainalign.errors import DataFormatError, InputError
from brainalign.rsa import project_to_fsaverage
from brainalign.rsa.project import sample_volume

SHAPE = (26, 28, 24)


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(data, dtype=np.float32)
    nib.save(
        nib.MGHImage(
            data.reshape(data.shape[0], 1, 1, -1).squeeze(-1)
            if data.ndim == 1
            else data.reshape(data.shape[0], 1, 1, 3),
            np.eye(4),
        ),
        str(path),
    )


@pytest.fixture()
def nsd_root(tmp_path):
    rng = np.random.default_rng(0)
    tdir = tmp_path / "nsddata" / "ppdata" / "subj03" / "transforms"
    layers = {}
    for hemi, n_native, n_fs in (("lh", 50, 30), ("rh", 40, 25)):
        for k in (1, 2, 3):
            c = 1 + rng.uniform(
                9, np.array(SHAPE) - 10, size=(n_native, 3)
            )  # deep interior, 1-based
            c[0] = 9999  # an invalid vertex
            layers[(hemi, k)] = c
            _write(tdir / f"{hemi}.func1pt8-to-layerB{k}.mgz", c)
        idx = rng.integers(1, n_native + 1, size=n_fs)
        layers[(hemi, "fs")] = idx
        _write(tdir / f"{hemi}.white-to-fsaverage.mgz", idx.astype(np.float32))
    return tmp_path, layers


def test_linear_field_reproduced(nsd_root):
    root, layers = nsd_root
    g = np.indices(SHAPE).astype(float)
    vol = 2.0 * g[0] - 0.5 * g[1] + 0.25 * g[2] + 3.0  # cubic B-splines reproduce linear fields
    out = project_to_fsaverage(vol, 3, root)
    assert out.shape == (55,)
    pieces = []
    for hemi in ("lh", "rh"):
        per = []
        for k in (1, 2, 3):
            c = layers[(hemi, k)] - 1
            v = 2.0 * c[:, 0] - 0.5 * c[:, 1] + 0.25 * c[:, 2] + 3.0
            v[0] = 0.0  # the invalid vertex gets nsdcode's badval 0
            per.append(v)
        pieces.append(np.mean(per, 0)[layers[(hemi, "fs")] - 1])
    # mode="nearest" spline boundaries perturb the interior only by ~0.27^distance
    np.testing.assert_allclose(out, np.concatenate(pieces), atol=1e-3)


def test_matches_map_coordinates_and_stack(nsd_root):
    root, layers = nsd_root
    rng = np.random.default_rng(1)
    vols = rng.standard_normal(SHAPE + (2,))
    vols[3, 3, 3, 0] = np.nan  # NaNs in the source become 0 before interpolation
    out = project_to_fsaverage(vols, "subj03", root)
    assert out.shape == (2, 55)
    clean = np.nan_to_num(vols[..., 0])
    c = (layers[("lh", 2)] - 1).T
    ref = map_coordinates(clean, np.where(c > 9000, -1, c), order=3, mode="nearest")
    ref[0] = 0
    got = sample_volume(vols[..., 0], layers[("lh", 2)])
    np.testing.assert_allclose(got, ref, atol=1e-10)
    np.testing.assert_allclose(out[1], project_to_fsaverage(vols[..., 1], 3, root), atol=1e-12)


def test_range_quirk():
    vol = np.arange(np.prod(SHAPE), dtype=float).reshape(SHAPE)
    c = np.array([[1.5, 5, 5], [SHAPE[0] + 1.0, 5, 5], [0.5, 5, 5], [5, 5, 5]])  # 1-based
    quirk = sample_volume(vol, c, quirk=True)
    plain = sample_volume(vol, c, quirk=False)
    assert quirk[0] == 0 and plain[0] != 0  # 0-based 0.5 is below nsdcode's lower bound 1
    assert quirk[1] != 0 and plain[1] == 0  # 0-based size is kept by nsdcode (clamped)
    assert quirk[2] == 0 and plain[2] == 0
    assert quirk[3] == plain[3] == pytest.approx(vol[4, 4, 4])


def test_errors(nsd_root, tmp_path):
    root, _ = nsd_root
    with pytest.raises(DataFormatError, match="not found"):
        project_to_fsaverage(np.zeros(SHAPE), 1, root)
    with pytest.raises(InputError):
        project_to_fsaverage(np.zeros((3, 3)), 3, root)
    with pytest.raises(DataFormatError, match="beyond the volume"):
        project_to_fsaverage(np.zeros((3, 3, 3)), 3, root)


def test_on_virtual_nsd(virtual_nsd_root):
    from brainalign.datasets import load_nsd

    sub = load_nsd(virtual_nsd_root, subject=1, space="func1pt8mm")
    mask_img = nib.load(str(virtual_nsd_root / "nsddata/ppdata/subj01/func1pt8mm/brainmask.nii.gz"))
    shape = mask_img.shape
    vol = np.zeros(shape)
    vol[np.asarray(mask_img.dataobj) > 0] = np.nanmean(sub.betas, 0)
    out = project_to_fsaverage(vol, 1, virtual_nsd_root)
    assert out.shape == (2 * 10242,) and np.isfinite(out).all()
