"""course_lib.distributed: 2 gloo processes under torchrun train exactly like one process."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from course_lib import distributed
from course_lib.train import load_checkpoint


@pytest.fixture()
def toy_data(tmp_path):
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(96, 6, generator=generator)
    labels = (inputs[:, 0] > 0).long() + (inputs[:, 1] > 0).long()
    path = tmp_path / "toy.pt"
    torch.save({"inputs": inputs, "labels": labels}, path)
    return path


def test_two_gloo_ranks_equal_one_process(toy_data, tmp_path):
    config = distributed.DistributedConfig(data=str(toy_data), model="toy", epochs=2, local_batch_size=8,
                                           accumulate=2, lr=0.1, checkpoint_dir=str(tmp_path / "ckpt"))
    ddp = distributed.launch(config, nproc_per_node=2, timeout_s=300)
    single = distributed.train(dataclasses.replace(config, virtual_ranks=2, checkpoint_dir=""))
    assert ddp["world_size"] == 2 and ddp["backend"] == "gloo" and not ddp["sync_batchnorm"]
    assert ddp["global_batch_size"] == 2 * 8 * 2
    assert len(ddp["losses"]) == len(single["losses"]) == 2 * ((96 // 2) // 8 // 2)
    assert np.abs(np.array(ddp["losses"]) - np.array(single["losses"])).max() < 1e-5
    # set_epoch: a new order every epoch; the ranks' shards never overlap
    assert ddp["first_indices"]["0"] != ddp["first_indices"]["1"]
    assert not set(ddp["first_indices"]["0"]["0"]) & set(ddp["first_indices"]["0"]["1"])
    assert ddp["first_indices"] == single["first_indices"]
    state, _ = load_checkpoint(tmp_path / "ckpt")           # written by rank 0
    assert state["epoch"] == 2 and state["losses"] == pytest.approx(ddp["losses"])


def test_one_rank_differs_from_two_virtual_ranks_with_batch_norm(toy_data):
    """Batch norm over 2 x 8 clips one by one is not batch norm over 16 at once: the reference must
    reproduce the ranks' micro-batches, not just the global batch size."""
    base = distributed.DistributedConfig(data=str(toy_data), model="toy", epochs=1, local_batch_size=8, lr=0.1)
    two = distributed.train(dataclasses.replace(base, virtual_ranks=2))
    one = distributed.train(dataclasses.replace(base, local_batch_size=16))
    assert two["global_batch_size"] == one["global_batch_size"] == 16
    assert np.abs(np.array(two["losses"]) - np.array(one["losses"])).max() > 1e-4


def test_errors_name_the_fix(tmp_path, toy_data):
    with pytest.raises(FileNotFoundError, match="no training data"):
        distributed.train(distributed.DistributedConfig(data=str(tmp_path / "missing.pt"), model="toy"))
    with pytest.raises(ValueError, match="precision"):
        distributed.train(distributed.DistributedConfig(data=str(toy_data), model="toy", precision="int8"))
    with pytest.raises(ValueError, match="fewer than accumulate"):
        distributed.train(distributed.DistributedConfig(data=str(toy_data), model="toy", local_batch_size=64,
                                                        accumulate=2))
    with pytest.raises(ValueError, match="rendezvous"):
        distributed.torchrun_command([], nnodes=2)


def test_torchrun_commands():
    one = distributed.torchrun_command(["--data", "x.pt"], nproc_per_node=2)
    assert one == "torchrun --standalone --nproc-per-node=2 -m course_lib.distributed --data x.pt"
    several = distributed.torchrun_command(["--data", "x.pt"], nproc_per_node=8, nnodes=2, rdzv_endpoint="node0:29400")
    assert "--nnodes=2" in several and "--rdzv-endpoint=node0:29400" in several and "--rdzv-backend=c10d" in several
