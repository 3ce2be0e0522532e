"""Tests for course_lib.train: learning, exact resume, safe checkpoints, NaN, precision."""

from __future__ import annotations

import math
import os

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

from course_lib import train
from course_lib.train import History, choose_precision, evaluate, fit, load_checkpoint, save_checkpoint

matplotlib.use("Agg")


def blobs(n: int = 480, n_classes: int = 3, dim: int = 8, seed: int = 0):
    """Gaussian blobs far apart: a task any small MLP separates."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(n_classes, dim, generator=g) * 3
    y = torch.randint(0, n_classes, (n,), generator=g)
    x = centers[y] + torch.randn(n, dim, generator=g)
    return torch.utils.data.TensorDataset(x, y)


def loaders(batch_size: int = 32, shuffle: bool = True):
    train_set, val_set = blobs(480, seed=0), blobs(120, seed=0)
    # Held-out points: same centres (seed), fresh noise.
    g = torch.Generator().manual_seed(1)
    xv, yv = val_set.tensors
    val_set = torch.utils.data.TensorDataset(xv + 0.1 * torch.randn(xv.shape, generator=g), yv)
    return (torch.utils.data.DataLoader(train_set, batch_size=batch_size, shuffle=shuffle),
            torch.utils.data.DataLoader(val_set, batch_size=64))


def mlp(seed: int = 0, dropout: float = 0.2) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, 3))


QUIET = dict(device="cpu", progress=False, live_plot=False)


def test_learns_separable_task():
    tl, vl = loaders()
    model = mlp()
    history = fit(model, tl, vl, epochs=4, lr=1e-2, seed=0, **QUIET)
    result = evaluate(model, vl, device="cpu")
    assert result.accuracy > 0.9, result
    assert len(history) == 4
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert set(history.columns) >= {"epoch", "train_loss", "val_loss", "val_accuracy",
                                    "val_macro_f1", "lr", "seconds", "samples_per_s"}


def test_deterministic_on_cpu():
    runs = []
    for _ in range(2):
        tl, vl = loaders()
        model = mlp()
        h = fit(model, tl, vl, epochs=2, lr=1e-2, seed=123, **QUIET)
        runs.append((h["train_loss"], h["val_loss"], model.state_dict()))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    for k, v in runs[0][2].items():
        assert torch.equal(v, runs[1][2][k]), k


def test_validation_does_not_change_training():
    # Iterating a DataLoader draws from torch's global generator even without shuffling; the
    # same seed must still give the same weights with or without a validation set.
    weights = []
    for with_val in (False, True):
        tl, vl = loaders()
        model = mlp()
        fit(model, tl, vl if with_val else None, epochs=3, lr=1e-2, seed=7, restore_best=False,
            **QUIET)
        weights.append(model.state_dict())
    for k, v in weights[0].items():
        assert torch.equal(v, weights[1][k]), k


class InterruptAt:
    """A batch transform that raises KeyboardInterrupt on its n-th call (a user's Ctrl-C)."""

    # Private attributes: the checkpoint fingerprint describes a transform by its public
    # settings, and where the user presses Ctrl-C is not a setting of the run.
    def __init__(self, n: int | None) -> None:
        self._n, self._calls = n, 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self._calls += 1
        if self._n is not None and self._calls == self._n:
            raise KeyboardInterrupt
        return x


# 15 training batches + 2 validation batches per epoch: call 24 is batch 7 of epoch 2 (mid-epoch),
# call 18 the first batch of epoch 2 (an epoch boundary).
@pytest.mark.parametrize("call, epoch, batch", [(24, 1, 6), (18, 1, 0)])
def test_resume_after_interrupt_is_exact(tmp_path, call, epoch, batch):
    kwargs = dict(epochs=3, lr=1e-2, seed=7, restore_best=False, **QUIET)
    tl, vl = loaders()
    reference = mlp(seed=1)
    ref_history = fit(reference, tl, vl, **kwargs)

    ckpt = tmp_path / "run"
    tl, vl = loaders()
    interrupted = mlp(seed=1)
    with pytest.raises(KeyboardInterrupt):
        fit(interrupted, tl, vl, checkpoint=ckpt, batch_transform=InterruptAt(call), **kwargs)
    state, _ = load_checkpoint(ckpt)
    assert state["position"]["epoch"] == epoch and state["position"]["batch"] == batch

    # A fresh process: new model object with other weights, other global RNG state.
    torch.manual_seed(999)
    np.random.seed(999)
    tl, vl = loaders()
    resumed = mlp(seed=2)
    history = fit(resumed, tl, vl, checkpoint=ckpt, batch_transform=InterruptAt(None), **kwargs)
    for k, v in reference.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    assert history["train_loss"] == ref_history["train_loss"]
    assert history["val_accuracy"] == ref_history["val_accuracy"]


def test_time_budget_stop_then_resume_is_exact(tmp_path):
    kwargs = dict(epochs=2, lr=1e-2, seed=3, schedule="cosine", optimizer="sgd",
                  restore_best=False, **QUIET)
    tl, vl = loaders()
    reference = mlp(seed=1)
    fit(reference, tl, vl, **kwargs)

    tl, vl = loaders()
    first = mlp(seed=1)
    h = fit(first, tl, vl, checkpoint=tmp_path, max_seconds=0.0, **kwargs)
    assert "time budget" in h.stopped and len(h) == 1
    resumed = mlp(seed=5)
    h2 = fit(resumed, tl, vl, checkpoint=tmp_path, **kwargs)
    assert len(h2) == 2 and not h2.stopped
    for k, v in reference.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def test_finished_run_is_not_retrained(tmp_path):
    tl, vl = loaders()
    model = mlp()
    fit(model, tl, vl, epochs=2, lr=1e-2, checkpoint=tmp_path, **QUIET)
    again = mlp(seed=9)
    h = fit(again, tl, vl, epochs=2, lr=1e-2, checkpoint=tmp_path, **QUIET)
    assert len(h) == 2
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k


def test_other_settings_do_not_resume(tmp_path):
    tl, vl = loaders()
    fit(mlp(), tl, vl, epochs=1, lr=1e-2, checkpoint=tmp_path, **QUIET)
    with pytest.warns(RuntimeWarning, match=r"another run.*lr: 0\.01 -> 0\.005"):
        h = fit(mlp(), tl, vl, epochs=1, lr=5e-3, checkpoint=tmp_path, **QUIET)
    assert len(h) == 1


@pytest.mark.parametrize("change, named", [
    (dict(loss_fn=nn.CrossEntropyLoss(label_smoothing=0.1)), "loss"),
    (dict(batch_transform=nn.Dropout(0.1)), "batch_transform"),
    (dict(grad_clip=1.0), "grad_clip"),
    (dict(amp=torch.bfloat16), "precision"),
    (dict(metric="macro_f1"), "metric"),
    (dict(seed=3), "seed"),
    (dict(batch_hook=lambda x, y: (x, y)), "batch_hook"),
])
def test_each_setting_that_changes_a_run_blocks_resuming_and_is_named(tmp_path, change, named):
    """The fingerprint covers loss, augmentation, clipping, precision, metric, seed, hook."""
    base = dict(epochs=1, lr=1e-2, checkpoint=tmp_path, amp=False, **QUIET)
    tl, vl = loaders()
    fit(mlp(), tl, vl, **base)
    with pytest.warns(RuntimeWarning, match=f"another run.*{named}:"):
        fit(mlp(), tl, vl, **{**base, **change})


def test_a_smaller_dataset_blocks_resuming(tmp_path):
    x, y = torch.randn(96, 8), torch.randint(0, 3, (96,))
    make = lambda n: torch.utils.data.DataLoader(  # noqa: E731
        torch.utils.data.TensorDataset(x[:n], y[:n]), batch_size=16)
    fit(mlp(), make(96), epochs=1, checkpoint=tmp_path, **QUIET)
    with pytest.warns(RuntimeWarning, match="dataset_size: 96 -> 90"):
        fit(mlp(), make(90), epochs=1, checkpoint=tmp_path, **QUIET)


def test_truncated_checkpoint_is_never_loaded(tmp_path):
    save_checkpoint({"complete": True, "which": torch.tensor(1)}, tmp_path)
    save_checkpoint({"complete": True, "which": torch.tensor(2)}, tmp_path)
    last = tmp_path / "last.pt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])
    with pytest.warns(RuntimeWarning, match="last.pt"):
        state, path = load_checkpoint(tmp_path)
    assert path.name == "previous.pt" and int(state["which"]) == 1


def test_crash_mid_write_keeps_the_good_checkpoint(tmp_path, monkeypatch):
    save_checkpoint({"complete": True, "which": torch.tensor(1)}, tmp_path)
    real_save = torch.save

    def dying_save(obj, fh):
        real_save(obj, fh)
        fh.truncate(10)  # the process dies with a partial file on disk
        raise OSError("disconnected")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(OSError):
        save_checkpoint({"complete": True, "which": torch.tensor(2)}, tmp_path)
    monkeypatch.undo()
    state, path = load_checkpoint(tmp_path)
    assert path.name == "last.pt" and int(state["which"]) == 1


def test_fit_falls_back_to_previous_checkpoint(tmp_path):
    tl, vl = loaders()
    kwargs = dict(epochs=2, lr=1e-2, checkpoint=tmp_path, checkpoint_every_s=0.0, **QUIET)
    fit(mlp(), tl, vl, **kwargs)
    (tmp_path / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.warns(RuntimeWarning, match="last.pt"):
        h = fit(mlp(), tl, vl, **kwargs)
    assert len(h) == 2


def test_checkpoint_loads_with_weights_only(tmp_path):
    tl, vl = loaders()
    fit(mlp(), tl, vl, epochs=1, lr=1e-2, checkpoint=tmp_path, **QUIET)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["complete"] and "rng" in state and "optimizer" in state


def test_nan_loss_names_epoch_and_step():
    x, y = blobs(64).tensors
    x = x.clone()
    x[40] = float("nan")  # batch 3 (of size 16) when not shuffled
    tl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    with pytest.raises(FloatingPointError, match=r"epoch 1, step 3 .*lower lr"):
        fit(mlp(), tl, epochs=2, lr=1e-2, **QUIET)


@pytest.fixture
def fake_cpu(monkeypatch):
    """A CPU whose bf16 is native or not, and measured faster or slower, as a test says."""
    from course_lib import runtime

    monkeypatch.delenv("COURSE_PRECISION", raising=False)

    def make(native: bool, fp32_ms: float = 10.0, bf16_ms: float = 10.0) -> None:
        monkeypatch.setattr(runtime, "_CPU_DECISION", None)
        monkeypatch.setattr(runtime, "cpu_bf16_native", lambda: native)
        monkeypatch.setattr(runtime, "time_cpu_precision", lambda *a, **k: runtime.PrecisionProbe(
            fp32_ms=fp32_ms, bf16_ms=bf16_ms, seconds=0.3, threads=1))

    return make


def _train_one_epoch_and_watch_dtypes(amp):
    tl, vl = loaders()
    model = mlp()
    seen: list[torch.dtype] = []
    model[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    h = fit(model, tl, vl, epochs=1, lr=1e-2, amp=amp, **QUIET)
    assert model[0].weight.dtype == torch.float32  # master weights stay float32
    assert math.isfinite(h["train_loss"][0])
    return h, seen


def test_bf16_autocast_on_cpu_when_forced():
    # The autocast code path stays tested on every CPU, whatever the automatic choice there is.
    h, seen = _train_one_epoch_and_watch_dtypes(torch.bfloat16)
    assert h.precision == "bfloat16"
    assert seen and all(d == torch.bfloat16 for d in seen)


def test_bf16_autocast_forced_by_the_environment(monkeypatch, fake_cpu):
    fake_cpu(native=False)  # a CPU where the automatic choice would be float32
    monkeypatch.setenv("COURSE_PRECISION", "bf16")
    h, seen = _train_one_epoch_and_watch_dtypes(True)
    assert h.precision == "bfloat16" and set(seen) == {torch.bfloat16}


@pytest.mark.parametrize("native, fp32_ms, bf16_ms, expected", [
    (False, 40.0, 10.0, "float32"),   # AVX2-only laptop: emulated bf16, not even timed
    (True, 40.0, 20.0, "bfloat16"),   # AVX512-BF16 / AMX and measured 2x faster
    (True, 20.0, 40.0, "float32"),    # native but measured slower
])
def test_fit_on_cpu_uses_the_measured_choice(fake_cpu, native, fp32_ms, bf16_ms, expected):
    fake_cpu(native, fp32_ms, bf16_ms)
    h, seen = _train_one_epoch_and_watch_dtypes(True)
    assert h.precision == expected
    assert set(seen) == {getattr(torch, expected)}


def test_float32_forced_by_the_environment_turns_autocast_off(monkeypatch, fake_cpu):
    fake_cpu(native=True, fp32_ms=40.0, bf16_ms=10.0)
    monkeypatch.setenv("COURSE_PRECISION", "fp32")
    p = choose_precision("cpu", True)
    assert (p.dtype, p.use_scaler, p.autocast) == (None, False, False)
    assert p.reason == "fp32: forced by COURSE_PRECISION=fp32"


@pytest.mark.parametrize(
    "device, amp, bf16, dtype, scaler",
    [
        ("cpu", True, None, torch.bfloat16, False),    # with the fake CPU: native, 2x faster
        ("cpu", False, None, None, False),
        ("cpu", torch.float32, None, None, False),     # a dtype of float32 means no autocast
        ("cuda", True, True, torch.bfloat16, False),   # A100, H100, L4
        ("cuda", True, False, torch.float16, True),    # T4, V100: fp16 needs loss scaling
        ("cuda", False, False, None, False),
        ("mps", True, None, None, False),
    ],
)
def test_choose_precision(fake_cpu, device, amp, bf16, dtype, scaler):
    fake_cpu(native=True, fp32_ms=40.0, bf16_ms=20.0)
    p = choose_precision(device, amp, cuda_bf16_supported=bf16)
    assert p.dtype == dtype and p.use_scaler == scaler
    assert p.reason


def test_grad_scaler_not_built_on_cpu(monkeypatch):
    built = []
    monkeypatch.setattr(torch.amp, "GradScaler", lambda *a, **k: built.append(a))
    tl, _ = loaders()
    fit(mlp(), tl, epochs=1, lr=1e-2, amp=True, **QUIET)
    assert built == []


def test_early_stopping_and_restore_best():
    tl, vl = loaders()
    model = mlp()
    # lr 0 after a good start: the metric cannot improve, so patience 1 stops at epoch 2.
    fit(model, tl, vl, epochs=2, lr=1e-2, **QUIET)
    h = fit(model, tl, vl, epochs=6, lr=1e-9, schedule=None, metric="loss",
            early_stopping_patience=1, **QUIET)
    assert "early stopping" in h.stopped and len(h) < 6
    assert h.best is not None and h.best["val_loss"] == min(h["val_loss"])


def test_restore_best_ends_with_the_best_epochs_weights():
    """Record the weights after each epoch; restore-best must end with the best epoch's."""
    tl, vl = loaders()
    model = mlp()
    # lr 3.0 with plain SGD: a noisy run whose best epoch is not the last.
    weights = []  # the weights after each epoch's training, recorded as validation starts
    import course_lib.train.loop as loop

    real_validate = loop._validate

    def validate_and_record(net, loader, step):
        weights.append({k: v.clone() for k, v in model.state_dict().items()})
        return real_validate(net, loader, step)

    loop._validate, saved = validate_and_record, loop._validate
    try:
        h = fit(model, tl, vl, epochs=6, lr=3.0, optimizer="sgd", schedule=None, metric="loss",
                **QUIET)
    finally:
        loop._validate = saved
    best = int(h.best["epoch"])
    assert best != len(h), "the test needs a run whose best epoch is not the last"
    for k, v in model.state_dict().items():
        assert torch.equal(v, weights[best - 1][k]), k
        assert not all(torch.equal(v, w[k]) for w in weights[best:]), k


def test_autoencoder_target_input_and_batch_transform():
    x = torch.randn(64, 1, 8, 12)
    tl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=16)
    from course_lib.models import ConvAutoencoder

    torch.manual_seed(0)
    model = ConvAutoencoder(channels=(4, 8), code_channels=2)
    scale = nn.Identity()
    h = fit(model, tl, tl, epochs=3, lr=3e-3, loss_fn=nn.MSELoss(), target="input",
            metric="loss", batch_transform=scale, **QUIET)
    assert h["train_loss"][-1] < h["train_loss"][0]
    assert "val_accuracy" not in h.columns


@pytest.mark.parametrize("profile,shown", [("ci", False), ("laptop", True), ("gpu", True)])
def test_progress_is_on_in_every_profile_but_ci(monkeypatch, capsys, profile, shown):
    from types import SimpleNamespace

    import course_lib.train.loop as loop

    monkeypatch.setattr(loop, "get_runtime", lambda: SimpleNamespace(profile=profile))
    tl, vl = loaders()
    fit(mlp(), tl, vl, epochs=1, lr=1e-2, device="cpu", live_plot=False)
    assert ("epoch 1/1" in capsys.readouterr().out) == shown


def test_history_table_plot_and_live_display(capsys):
    tl, vl = loaders()
    h = fit(mlp(), tl, vl, epochs=2, lr=1e-2, device="cpu", progress=True, live_plot=False)
    out = capsys.readouterr().out
    assert "epoch 1/2" in out and "val_accuracy" in out  # one log line per epoch
    table = h.to_table()
    assert table.splitlines()[0].split()[:3] == ["epoch", "train_loss", "val_loss"]
    assert "*" in table
    fig = h.plot()
    assert fig.axes[0].get_xlabel() == "epoch" and fig.axes[0].get_ylabel()
    h2 = fit(mlp(), tl, vl, epochs=1, lr=1e-2, device="cpu", progress=False, live_plot=True)
    assert len(h2) == 1
    restored = History()
    restored.load_state_dict(h.state_dict())
    assert restored["val_loss"] == h["val_loss"]


def test_evaluate_matches_sklearn():
    import sklearn.metrics as sk  # a hard dependency: a broken install must fail, not skip
    tl, vl = loaders()
    model = mlp()
    fit(model, tl, vl, epochs=1, lr=3e-3, **QUIET)
    result = evaluate(model, vl, device="cpu", classes=["a", "b", "c"],
                      loss_fn=nn.CrossEntropyLoss())
    logits, y = train.predict(model, vl, device="cpu")
    pred = logits.argmax(1).numpy()
    assert result.accuracy == pytest.approx(sk.accuracy_score(y, pred))
    assert result.macro_f1 == pytest.approx(sk.f1_score(y, pred, average="macro",
                                                        labels=[0, 1, 2], zero_division=0))
    np.testing.assert_array_equal(result.confusion, sk.confusion_matrix(y, pred, labels=[0, 1, 2]))
    assert "precision" in result.per_class_table()
    fig = result.plot_confusion()
    assert fig.axes[0].get_xlabel() == "predicted class"
    assert math.isfinite(result.loss)


def test_bad_arguments_are_explained():
    tl, vl = loaders()
    with pytest.raises(ValueError, match="optimizer"):
        fit(mlp(), tl, epochs=1, optimizer="adam?", **QUIET)
    with pytest.raises(ValueError, match="schedule"):
        fit(mlp(), tl, epochs=1, schedule="step", **QUIET)
    with pytest.raises(ValueError, match="training set empty"):
        fit(mlp(), [], epochs=1, **QUIET)
    with pytest.raises(TypeError, match="batch"):
        fit(mlp(), ["not a batch"], epochs=1, **QUIET)


def test_make_loader_pins_only_for_cuda():
    ds = blobs(32)
    assert not train.make_loader(ds, 8, device="cpu").pin_memory
    assert os.cpu_count()  # make_loader needs no runtime when a device is given


def test_collate_pad_batches_are_understood():
    x = torch.randn(4, 1, 100)
    batch = (x, torch.full((4,), 100), torch.tensor([0, 1, 2, 1]), [{}] * 4)
    got_x, got_y = train._split_batch(batch)
    assert got_x is x and got_y.tolist() == [0, 1, 2, 1]
    assert train._split_batch((x, torch.tensor([1, 0, 1, 0]), {"path": ["a"] * 4}))[1].tolist() \
        == [1, 0, 1, 0]


def test_auto_checkpoint_goes_to_the_runtime_folder(tmp_path, monkeypatch):
    import dataclasses

    from course_lib import runtime

    rt = dataclasses.replace(runtime.get_runtime(), checkpoint_dir=tmp_path)
    monkeypatch.setattr(runtime, "_RUNTIME", rt)
    tl, vl = loaders()
    fit(mlp(), tl, vl, epochs=1, lr=1e-2, checkpoint="auto", **QUIET)
    folders = list(tmp_path.iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("Sequential-")
    assert (folders[0] / "last.pt").exists()


def test_bench_train_runs_and_reports(capsys):
    """The benchmark's two pipelines run end to end (numbers are reported, never asserted)."""
    from course_lib import bench

    assert bench.main(["train", "--clips", "8", "--batch-size", "4", "--epochs", "1",
                       "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "naive" in out and "packed" in out and "speed-up" in out


def test_bench_can_store_clips_at_a_dataset_rate():
    from course_lib.bench import bench_train

    result = bench_train(n_clips=8, batch_size=4, epochs=1, device="cpu", file_rate=44100)
    assert "44100 Hz" in result.source
    assert result.naive_input > 0 and result.packed_input > 0


def test_history_and_evaluate_report_the_same_macro_f1():
    """One definition: sklearn's macro-F1 over all classes (zero_division=0), everywhere.

    The model never predicts class 2 and the validation set has no class 2 either: averaging only
    the classes present would give a different (higher) number."""
    x = torch.randn(60, 8)
    y = torch.arange(60) % 2
    vl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    torch.manual_seed(0)
    model = nn.Linear(8, 3)
    with torch.no_grad():
        model.bias[2] = -100.0  # never predicts class 2 (lr=0 keeps it so)
    h = fit(model, vl, vl, epochs=1, lr=0.0, schedule=None, **QUIET)
    result = evaluate(model, vl, device="cpu")
    import sklearn.metrics as sk

    expected = sk.f1_score(result.targets, result.predictions, labels=[0, 1, 2], average="macro",
                           zero_division=0)
    assert h["val_macro_f1"][-1] == pytest.approx(expected)
    assert result.macro_f1 == pytest.approx(expected)
    present_only = sk.f1_score(result.targets, result.predictions, average="macro",
                               zero_division=0)
    assert present_only != pytest.approx(expected)  # the case the two conventions disagree on


@pytest.mark.parametrize("was_training", [False, True])
def test_predict_restores_the_transforms_mode(was_training):
    tl, vl = loaders()
    transform = nn.Dropout(0.5).train(was_training)
    train.predict(mlp(), vl, batch_transform=transform, device="cpu")
    assert transform.training is was_training
    evaluate(mlp(), vl, batch_transform=transform, device="cpu")
    assert transform.training is was_training


def test_mixup_hook_trains_with_soft_targets():
    from course_lib.features import Mixup

    tl, vl = loaders()
    seen = []

    def loss_fn(out, target):
        seen.append(target.dim())
        return nn.functional.cross_entropy(out, target)

    model = mlp()
    h = fit(model, tl, vl, epochs=3, lr=1e-2, seed=0, batch_hook=Mixup(3, alpha=0.4),
            loss_fn=loss_fn, **QUIET)
    assert 2 in seen and 1 in seen  # soft targets in training, labels in validation
    assert h["val_accuracy"][-1] > 0.8


def test_mixup_hook_makes_convex_soft_targets():
    from course_lib.features import Mixup

    x, y = torch.randn(16, 4), torch.randint(0, 5, (16,))
    xm, ym = Mixup(5, alpha=1.0, generator=torch.Generator().manual_seed(0))(x, y)
    assert ym.shape == (16, 5) and torch.allclose(ym.sum(1), torch.ones(16))
    # each mixed row is lam*x_i + (1-lam)*x_j with lam the weight of y_i's class in ym
    lam = ym[torch.arange(16), y]
    assert torch.all((lam >= 0.5 - 1e-6) | (ym > 0).sum(1).eq(2) | (ym.max(1).values == 1))
    with pytest.raises(ValueError, match="alpha"):
        Mixup(5, alpha=0)


def test_fit_and_evaluate_take_torch_geometric_batches():
    """Native PyG support: a loader of Batch objects, labels from .y, counted per graph."""
    from torch_geometric.data import Data
    from torch_geometric.loader import DataLoader as GraphLoader
    from torch_geometric.nn import global_mean_pool

    g = torch.Generator().manual_seed(0)
    graphs = []
    for i in range(48):
        label = i % 2
        n = 4 + i % 3
        feats = torch.randn(n, 3, generator=g) + (2.0 if label else -2.0)
        edges = torch.stack([torch.arange(n), (torch.arange(n) + 1) % n])
        graphs.append(Data(x=feats, edge_index=edges, y=torch.tensor([label])))

    class MeanPool(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, batch):
            return self.fc(global_mean_pool(batch.x, batch.batch))

    torch.manual_seed(0)
    model = MeanPool()
    tl = GraphLoader(graphs[:32], batch_size=8, shuffle=True)
    vl = GraphLoader(graphs[32:], batch_size=8)
    h = fit(model, tl, vl, epochs=3, lr=5e-2, **QUIET)
    result = evaluate(model, vl, device="cpu")
    assert result.n == 16 and result.accuracy == 1.0
    assert h["samples_per_s"][-1] > 0 and h["val_accuracy"][-1] == 1.0
