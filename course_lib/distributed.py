"""Data-parallel training past one process: one script, run alone or under ``torchrun``.

Run it on one machine with two processes (CPU, gloo) or one process per GPU (NCCL)::

    torchrun --standalone --nproc-per-node 2 -m course_lib.distributed \\
        --data features.pt --out result.json --epochs 2 --local-batch-size 32

``torchrun`` starts the processes and gives each ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` and a
rendezvous address; :func:`train` then

* joins the process group (NCCL on GPUs, gloo on CPUs) and wraps the model in
  ``DistributedDataParallel`` (DDP), which averages the gradients of all ranks in ``backward``;
* gives each rank its own shard of every epoch with ``DistributedSampler`` and reshuffles with
  ``set_epoch(epoch)`` (without it every epoch repeats the first epoch's order);
* converts batch norm to ``SyncBatchNorm`` on GPUs (statistics over the global batch); on CPU/gloo
  it keeps ordinary batch norm, which normalises each rank's local batch;
* accumulates gradients over ``accumulate`` micro-batches, synchronising only on the last
  (``no_sync``), and runs the forward pass under autocast (``--precision bf16|fp16``, with a
  ``GradScaler`` for fp16 on CUDA);
* saves checkpoints from rank 0 only (atomic, ``course_lib.train.save_checkpoint``) and writes the
  loss curve to ``--out`` (JSON).

Run without ``torchrun`` (one process), ``--virtual-ranks R`` processes the same micro-batches the
``R`` ranks would, one after the other, and averages their gradients: the single-process reference
a DDP run must equal. :func:`launch` starts ``torchrun`` from Python (a notebook) and reads the result
back; :func:`torchrun_command` prints the command for one or several machines.

Notebook: 19_deploy_and_scale
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

__all__ = ["DistributedConfig", "build_model", "launch", "main", "torchrun_command", "train"]

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class DistributedConfig:
    """Settings of one training run (the script's command-line options).

    Attributes
    ----------
    data : str
        A ``torch.save`` file with ``inputs`` (n_examples, ...) float32 and ``labels`` (n_examples,)
        int64.
    out : str
        Where rank 0 writes the result (JSON); "" writes nothing.
    model : {"dscnn", "toy"}
        ``course_lib.models.kws.DSCNN`` on log-mel inputs ``(n, n_mels, n_frames)``, or a two-layer
        perceptron with batch norm on vectors ``(n, n_features)`` (the fast test).
    channels, n_blocks : int
        DSCNN size.
    epochs : int
    local_batch_size : int
        Examples per micro-batch on one rank.
    accumulate : int
        Micro-batches per optimiser step. Global batch = ranks x local_batch_size x accumulate.
    lr : float
        SGD learning rate (momentum 0.9).
    seed : int
        Seed of the weights and of the sampler's shuffles.
    precision : {"fp32", "bf16", "fp16"}
        Autocast dtype of the forward pass (fp16 only on CUDA).
    device : {"cpu", "cuda"}
        ``cuda``: one GPU per rank (``LOCAL_RANK``), NCCL; ``cpu``: gloo.
    virtual_ranks : int
        Without torchrun: how many ranks to reproduce in one process.
    checkpoint_dir : str
        Rank 0 saves here after every epoch ("" = no checkpoints).
    """

    data: str
    out: str = ""
    model: str = "dscnn"
    channels: int = 32
    n_blocks: int = 2
    epochs: int = 2
    local_batch_size: int = 32
    accumulate: int = 1
    lr: float = 0.05
    seed: int = 0
    precision: str = "fp32"
    device: str = "cpu"
    virtual_ranks: int = 1
    checkpoint_dir: str = ""


def build_model(kind: str, inputs: torch.Tensor, n_classes: int, channels: int = 32, n_blocks: int = 2,
                seed: int = 0) -> nn.Module:
    """The model of a run, with the same initial weights on every rank (seeded).

    Parameters
    ----------
    kind : {"dscnn", "toy"}
    inputs : Tensor, shape (n_examples, ...)
        Training inputs (the DSCNN measures its band normalisation on them).
    n_classes : int
    channels, n_blocks : int
        DSCNN size.
    seed : int

    Returns
    -------
    nn.Module

    Notebook: 19_deploy_and_scale
    """
    torch.manual_seed(seed)
    if kind == "dscnn":
        from course_lib.models.kws import DSCNN

        model = DSCNN(n_mels=inputs.shape[1], n_classes=n_classes, channels=channels, n_blocks=n_blocks,
                      dropout=0.0)    # no dropout: ranks draw different masks than one process would
        return model.fit_normalization([inputs])
    if kind == "toy":
        return nn.Sequential(nn.Linear(inputs.shape[1], 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, n_classes))
    raise ValueError(f"unknown model {kind!r}: use 'dscnn' or 'toy'")


def _setup_process_group(device_kind: str) -> tuple[int, int, torch.device, str]:
    """Join the group torchrun set up (if any): (rank, world size, this rank's device, backend)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1 or not dist.is_available():
        device = torch.device("cuda" if device_kind == "cuda" else "cpu")
        return 0, 1, device, "none"
    if device_kind == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.device_count() <= local_rank:
            raise RuntimeError(f"rank {os.environ.get('RANK')} needs GPU {local_rank} but this machine has "
                               f"{torch.cuda.device_count()}: use --nproc-per-node <= the GPU count, or --device cpu")
        torch.cuda.set_device(local_rank)
        device, backend = torch.device("cuda", local_rank), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size(), device, backend


def train(config: DistributedConfig) -> dict:
    """Train as configured; in a torchrun process, as one rank of the group. Returns the result.

    Parameters
    ----------
    config : DistributedConfig

    Returns
    -------
    dict
        ``losses`` (training loss of every optimiser step, averaged over the global batch),
        ``world_size``, ``backend``, ``device``, ``sync_batchnorm``, ``global_batch_size``,
        ``steps_per_epoch``, ``first_indices`` (epoch -> rank -> the first indices its sampler
        gave: ``set_epoch`` at work), ``checkpoint``, ``seconds``, ``config``.

    Notebook: 19_deploy_and_scale
    """
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    if config.precision not in PRECISIONS:
        raise ValueError(f"precision {config.precision!r}: use one of {sorted(PRECISIONS)}")
    rank, world, device, backend = _setup_process_group(config.device)
    distributed = backend != "none"
    t0 = time.perf_counter()
    try:
        data = torch.load(config.data, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{config.data}: no training data there (a torch.save file of inputs and labels)") from None
    dataset = TensorDataset(data["inputs"].float(), data["labels"].long())
    n_classes = int(data["labels"].max()) + 1
    model = build_model(config.model, data["inputs"].float(), n_classes, config.channels, config.n_blocks,
                        config.seed).to(device)
    sync_bn = distributed and device.type == "cuda"
    if sync_bn:    # batch statistics over the global batch (all-reduced in forward); CUDA/NCCL only
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if distributed:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    n_shards = world if distributed else max(1, config.virtual_ranks)
    ranks_here = [rank] if distributed else list(range(n_shards))
    samplers = [DistributedSampler(dataset, num_replicas=n_shards, rank=r, shuffle=True, seed=config.seed,
                                   drop_last=True) for r in ranks_here]
    loaders = [DataLoader(dataset, batch_size=config.local_batch_size, sampler=s, drop_last=True) for s in samplers]
    steps_per_epoch = len(loaders[0]) // config.accumulate
    if steps_per_epoch < 1:
        raise ValueError(f"{len(dataset)} examples over {n_shards} ranks give {len(loaders[0])} micro-batches of "
                         f"{config.local_batch_size}: fewer than accumulate={config.accumulate}")
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)
    dtype = PRECISIONS[config.precision]
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 and device.type == "cuda" else None
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype != torch.float32 else contextlib.nullcontext
    # one process standing in for R ranks: on GPUs (SyncBatchNorm) their micro-batches form one batch;
    # on CPU/gloo each rank's batch norm sees its own micro-batch, so they run one by one
    merge = not distributed and len(ranks_here) > 1 and config.device == "cuda"
    losses: list[float] = []
    first_indices: dict[str, dict[str, list[int]]] = {}
    checkpoint = ""
    model.train()
    for epoch in range(config.epochs):
        for r, sampler in zip(ranks_here, samplers):
            sampler.set_epoch(epoch)                   # a new shuffle every epoch, the same on every rank
            first_indices.setdefault(str(epoch), {})[str(r)] = list(iter(sampler))[:4]
        iterators = [iter(loader) for loader in loaders]
        for _ in range(steps_per_epoch):
            optimizer.zero_grad(set_to_none=True)
            step_loss = torch.zeros((), device=device)
            for micro in range(config.accumulate):
                last = micro == config.accumulate - 1
                # no_sync: keep the gradients local until the last micro-batch, then one all-reduce
                sync = contextlib.nullcontext() if (last or not distributed) else model.no_sync()
                with sync:
                    batches = [next(iterator) for iterator in iterators]
                    if merge:       # SyncBatchNorm's view: one batch norm over the ranks' micro-batches
                        batches = [tuple(torch.cat(parts_) for parts_ in zip(*batches))]
                    for inputs, labels in batches:
                        inputs, labels = inputs.to(device), labels.to(device)
                        with autocast():
                            loss = F.cross_entropy(model(inputs).float(), labels)
                        scaled = loss / len(batches) / config.accumulate
                        (scaler.scale(scaled) if scaler else scaled).backward()
                        step_loss += loss.detach() / len(batches) / config.accumulate
            if scaler:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            if distributed:                            # the global batch's loss, for the curve
                dist.all_reduce(step_loss)
                step_loss /= world
            losses.append(float(step_loss))
        if config.checkpoint_dir and rank == 0:       # one writer: ranks hold the same weights
            from course_lib.train.checkpoint import save_checkpoint

            module = model.module if distributed else model
            checkpoint = str(save_checkpoint({"model": module.state_dict(), "optimizer": optimizer.state_dict(),
                                              "epoch": epoch + 1, "losses": losses, "config": asdict(config),
                                              "complete": True}, config.checkpoint_dir))
        if distributed:
            dist.barrier()                             # nobody reads a checkpoint rank 0 is still writing
    if distributed:                                    # every rank's first indices, for rank 0's result
        gathered: list = [None] * world
        dist.all_gather_object(gathered, first_indices)
        first_indices = {epoch: {r: part[epoch][r] for part in gathered for r in part[epoch]}
                         for epoch in first_indices}
    result = {
        "losses": losses, "world_size": world, "ranks_simulated": n_shards, "backend": backend,
        "device": str(device), "sync_batchnorm": sync_bn,
        "global_batch_size": n_shards * config.local_batch_size * config.accumulate,
        "steps_per_epoch": steps_per_epoch, "first_indices": first_indices, "checkpoint": checkpoint,
        "seconds": time.perf_counter() - t0, "config": asdict(config),
    }
    if config.out and rank == 0:
        Path(config.out).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(config.out).with_suffix(".tmp")
        tmp.write_text(json.dumps(result))
        os.replace(tmp, config.out)
    if distributed:
        dist.destroy_process_group()
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="torchrun --nproc-per-node N -m course_lib.distributed",
                                     description="Data-parallel training of the course's keyword spotter.")
    defaults = DistributedConfig(data="")
    for name, value in asdict(defaults).items():
        flag = "--" + name.replace("_", "-")
        if name == "data":
            parser.add_argument(flag, required=True, help="torch.save file with inputs and labels")
        else:
            parser.add_argument(flag, type=type(value), default=value)
    return parser


def main(argv: Sequence[str] | None = None) -> dict:
    """The command-line entry point (what ``torchrun -m course_lib.distributed`` runs)."""
    args = _parser().parse_args(argv)
    return train(DistributedConfig(**vars(args)))


def torchrun_command(script_args: Sequence[str], nproc_per_node: int = 2, nnodes: int = 1,
                     rdzv_endpoint: str = "", run_id: str = "kws19") -> str:
    """The shell command that runs this script on one machine or several.

    Parameters
    ----------
    script_args : sequence of str
        Options of the script (``--data ...``).
    nproc_per_node : int
        Processes per machine (one per GPU, or a few on a CPU).
    nnodes : int
        Machines. With more than one, every machine runs the same command and they meet at the
        rendezvous (``c10d`` backend at ``rdzv_endpoint``, ``host:port`` of one of them).
    rdzv_endpoint : str
    run_id : str
        Names the job at the rendezvous.

    Returns
    -------
    str

    Notebook: 19_deploy_and_scale
    """
    if nnodes == 1:
        launcher = ["torchrun", "--standalone", f"--nproc-per-node={nproc_per_node}"]
    else:
        if not rdzv_endpoint:
            raise ValueError("several machines need a rendezvous endpoint: rdzv_endpoint='host:29400'")
        launcher = ["torchrun", f"--nnodes={nnodes}", f"--nproc-per-node={nproc_per_node}", "--rdzv-backend=c10d",
                    f"--rdzv-endpoint={rdzv_endpoint}", f"--rdzv-id={run_id}"]
    return shlex.join([*launcher, "-m", "course_lib.distributed", *map(str, script_args)])


def launch(config: DistributedConfig, nproc_per_node: int = 2, timeout_s: float = 600.0) -> dict:
    """Run the script under ``torchrun`` in a subprocess and return rank 0's result.

    Parameters
    ----------
    config : DistributedConfig
        ``out`` may be "": a temporary file is used.
    nproc_per_node : int
        Processes (ranks) on this machine.
    timeout_s : float
        Stop waiting after this many seconds (an error).

    Returns
    -------
    dict
        :func:`train`'s result, plus ``command`` (what ran) and ``launch_seconds`` (wall time,
        process start-up included).

    Raises
    ------
    RuntimeError
        torchrun failed: the message holds the end of its output.

    Notebook: 19_deploy_and_scale
    """
    with tempfile.TemporaryDirectory(prefix="ddp19-") as folder:
        out = config.out or str(Path(folder) / "result.json")
        args = []
        for name, value in asdict(config).items():
            if name == "out":
                value = out
            args += ["--" + name.replace("_", "-"), str(value)]
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc-per-node={nproc_per_node}", "-m", "course_lib.distributed", *args]
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")      # one thread per rank: the ranks share the cores
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=env)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"torchrun did not finish in {timeout_s:.0f} s: {shlex.join(command)}") from None
        seconds = time.perf_counter() - t0
        if proc.returncode != 0 or not Path(out).is_file():
            tail = (proc.stdout + proc.stderr)[-3000:]
            raise RuntimeError(f"torchrun exited with {proc.returncode} and {'no' if not Path(out).is_file() else 'a'} "
                               f"result file. Command: {shlex.join(command)}\nIts last output:\n{tail}")
        result = json.loads(Path(out).read_text())
    result["command"] = torchrun_command(args, nproc_per_node)
    result["launch_seconds"] = seconds
    return result


if __name__ == "__main__":
    main()
