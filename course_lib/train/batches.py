"""Reading batches: inputs and labels out of tuples, dicts, tensors or torch-geometric graphs,
moved to the device; ``make_loader`` for a ``DataLoader`` set up for the device.

Notebook: 05_from_filters_to_cnns
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from course_lib.runtime import torch_device

__all__ = ["make_loader"]


def _is_graph(batch: Any) -> bool:
    """A torch-geometric ``Data``/``Batch`` (checked without importing torch-geometric)."""
    if "torch_geometric" not in sys.modules:
        return False
    from torch_geometric.data import Data

    return isinstance(batch, Data)


def _batch_size(x: Any) -> int:
    """Items in a batch: graphs in a torch-geometric ``Batch``, else ``len``."""
    return int(x.num_graphs) if _is_graph(x) else len(x)


def _split_batch(batch: Any) -> tuple[Any, torch.Tensor | None]:
    """(inputs, targets) from a (x, y, ...) tuple, collate_pad's 4-tuple, a dict, a tensor, or a
    torch-geometric ``Batch`` (the batch itself is the input; its ``y`` the labels)."""
    if isinstance(batch, torch.Tensor):
        return batch, None
    if _is_graph(batch):
        return batch, getattr(batch, "y", None)
    if isinstance(batch, dict):
        x = next((batch[k] for k in ("waveform", "x", "input", "features") if k in batch), None)
        y = next((batch[k] for k in ("label", "y", "target") if k in batch), None)
        if x is None:
            raise ValueError(f"a dict batch needs a 'waveform' or 'x' key; got {list(batch)}")
        return x, y
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        if len(batch) == 4 and isinstance(batch[3], list):
            # course_lib.data.collate_pad: (waveforms, lengths, labels, metas)
            return batch[0], batch[2]
        y = batch[1] if len(batch) > 1 and isinstance(batch[1], torch.Tensor) else None
        return batch[0], y
    raise TypeError(
        f"cannot read a batch of type {type(batch).__name__}: yield (inputs, labels, ...) tuples, "
        "a dict with 'waveform'/'label', or a tensor"
    )


def _to_device(t: Any, device: torch.device) -> Any:
    # non_blocking overlaps the copy with compute when the loader pinned the memory (CUDA).
    # torch-geometric graphs have the same .to(device, non_blocking=...) as tensors.
    return None if t is None else t.to(device, non_blocking=True)


def make_loader(
    dataset: Any,
    batch_size: int,
    *,
    shuffle: bool = False,
    device: torch.device | str | None = None,
    num_workers: int = 0,
    collate_fn: Callable[[list[Any]], Any] | None = None,
    drop_last: bool = False,
) -> torch.utils.data.DataLoader:
    """A ``DataLoader`` set up for ``device``: pinned memory on CUDA, persistent workers.

    Shuffling draws from torch's global generator, which ``fit`` saves in its checkpoints, so
    a resumed run sees the same batch order.

    Notebook: 05_from_filters_to_cnns
    """
    device = torch_device(device)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
        collate_fn=collate_fn, drop_last=drop_last, pin_memory=device.type == "cuda",
        persistent_workers=num_workers > 0,
    )


def _set_transform_mode(transform: Any, training: bool) -> None:
    if isinstance(transform, nn.Module):
        transform.train(training)

