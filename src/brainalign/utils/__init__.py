"""Small helpers shared by every stage: atomic files, hashing, progress, argument checks."""

from brainalign.utils.hashing import hash_array, hash_file, hash_json
from brainalign.utils.io import atomic_path, atomic_save_npy, atomic_write_json, atomic_write_text
from brainalign.utils.paths import default_cache_dir
from brainalign.utils.progress import progress
from brainalign.utils.validation import check_2d, check_random_state

__all__ = [
    "atomic_path",
    "atomic_save_npy",
    "atomic_write_json",
    "atomic_write_text",
    "check_2d",
    "check_random_state",
    "default_cache_dir",
    "hash_array",
    "hash_file",
    "hash_json",
    "progress",
]
