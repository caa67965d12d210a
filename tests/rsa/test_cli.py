import json

import numpy as np
import typer
from typer.testing import CliRunner

from brainalign.cli import rsa as rsa_cli
from brainalign.rsa import Neighbourhoods, searchlight, volume_neighbourhoods


def _app():
    app = typer.Typer()
    rsa_cli.register(app)
    return app


def test_volume_searchlight_and_subsets(tmp_path):
    rng = np.random.default_rng(0)
    mask = np.zeros((8, 8, 8), bool)
    mask[1:7, 1:7, 1:7] = True
    betas = rng.standard_normal((40, mask.sum())).astype(np.float32)
    feats = rng.standard_normal((40, 6))
    np.save(tmp_path / "mask.npy", mask)
    np.save(tmp_path / "betas.npy", betas)
    np.save(tmp_path / "feats.npy", feats)
    runner = CliRunner()
    res = runner.invoke(_app(), ["subsets", "40", "--size", "10", "-o", str(tmp_path / "subs.npy")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        _app(),
        [
            "searchlight",
            str(tmp_path / "betas.npy"),
            "-m",
            str(tmp_path / "feats.npy"),
            "--mask",
            str(tmp_path / "mask.npy"),
            "--radius",
            "2",
            "--subsets",
            str(tmp_path / "subs.npy"),
            "-o",
            str(tmp_path / "map.npy"),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    got = np.load(tmp_path / "map.npy")
    nb = volume_neighbourhoods(mask, radius=2)
    expected = searchlight(betas, feats, nb, mode="subsets", subsets=np.load(tmp_path / "subs.npy"))
    np.testing.assert_allclose(got, expected, atol=1e-6)
    meta = json.loads((tmp_path / "map.json").read_text())
    assert meta["models"] == ["feats"] and meta["mode"] == "subsets"
    assert isinstance(nb, Neighbourhoods)


def test_weighted_searchlight_rows_are_named(tmp_path):
    from brainalign.rsa.weighted_searchlight import weighted_searchlight

    rng = np.random.default_rng(3)
    mask = np.zeros((6, 6, 6), bool)
    mask[1:5, 1:5, 1:5] = True
    betas = rng.standard_normal((30, mask.sum())).astype(np.float32)
    feats = {"a": rng.standard_normal((30, 5)), "b": rng.standard_normal((30, 7))}
    np.save(tmp_path / "mask.npy", mask)
    np.save(tmp_path / "betas.npy", betas)
    for k, v in feats.items():
        np.save(tmp_path / f"{k}.npy", v)
    args = ["searchlight", str(tmp_path / "betas.npy"), "-m", str(tmp_path / "a.npy")]
    args += ["-m", str(tmp_path / "b.npy"), "--mask", str(tmp_path / "mask.npy"), "--radius", "2"]
    args += ["--weighted", "--k-stimuli", "3", "--gain", "a", "-o", str(tmp_path / "w.npy")]
    res = CliRunner().invoke(_app(), [*args, "--no-progress"])
    assert res.exit_code == 0, res.output
    got = np.load(tmp_path / "w.npy")
    meta = json.loads((tmp_path / "w.json").read_text())
    assert meta["rows"] == ["weighted", "single:a", "single:b", "weight:a", "weight:b", "gain:a"]
    nb = volume_neighbourhoods(mask, radius=2)
    want = weighted_searchlight(betas, feats, nb, k_stimuli=3, reduced=["a"])
    np.testing.assert_allclose(got[0], want.score, atol=1e-6)
    np.testing.assert_allclose(got[5], want.gain("a"), atol=1e-6)
    bad = CliRunner().invoke(_app(), [*args, "--subsets", str(tmp_path / "a.npy")])
    assert bad.exit_code != 0
