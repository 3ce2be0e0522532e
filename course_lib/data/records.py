"""The record a dataset index yields: one audio file, its label and what is known about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The course's split names, everywhere (loaders, indexers, offline sets, miniature mirrors).
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Record:
    """One clip of a dataset split.

    Attributes
    ----------
    path : Path
        Audio file (anything soundfile reads: wav, flac, ogg).
    label : int
        Index into the dataset's ``classes``; ``-1`` where a task has no class (e.g. ASR).
    meta : dict
        Free-form facts: ``speaker``/``source`` (what splits are grouped by), ``transcript``,
        ``fold``, ``provenance``, ``license``...
    """

    path: Path
    label: int
    meta: dict[str, Any] = field(default_factory=dict)
