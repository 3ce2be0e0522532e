"""The data layer: real datasets (registry, download, index), offline sets, and datasets to train on.

``load_dataset(name, split)`` is the one entry point notebooks use; ``python -m course_lib.data``
lists datasets and builds the offline sets.

Notebook: 00_welcome
"""

from __future__ import annotations

import importlib
from typing import Any

from course_lib.data.records import Record

__all__ = [
    "SPLITS",
    "AudioDataset",
    "OfflineSetMissing",
    "PackedSplit",
    "Record",
    "collate_pad",
    "decode_split",
    "dataset_summary",
    "load_dataset",
    "offline_records",
    "pack_split",
]


def __getattr__(name: str) -> Any:
    # Lazy: the offline builders and the command line import this package without paying for
    # torch (datasets.py needs it); builder worker processes start faster that way.
    if name in __all__:
        return getattr(importlib.import_module("course_lib.data.datasets"), name)
    raise AttributeError(f"module 'course_lib.data' has no attribute {name!r}")
