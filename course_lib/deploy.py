"""Deployment: export to ONNX, run with ONNX Runtime, quantise to int8, measure latency, stream.

* Front end in the graph: :class:`ConvLogMel` computes :func:`course_lib.features.log_mel` with real
  operations only (a strided ``Conv1d`` whose kernels are the windowed cosines and sines of the DFT,
  then power, the mel matrix and dB), because ONNX has no complex tensors: ``torch.stft(...,
  return_complex=True)`` does not export. :class:`WaveformClassifier` puts it in front of a log-mel
  classifier so that one graph maps samples to logits.
* Export and run: :func:`export_onnx` (``torch.onnx.export`` with the ``torch.export`` based
  exporter, a dynamic batch axis, one self-contained file), :func:`onnx_session` (ONNX Runtime on
  the CPU with a fixed thread count), :func:`run_session`.
* Quantisation with ONNX Runtime's maintained tools (``torch.ao.quantization`` is deprecated):
  :func:`quantize_dynamic_onnx` and :func:`quantize_static_onnx` with :class:`ArrayCalibrationReader`;
  :func:`quantize_affine` / :func:`dequantize_affine` spell out the uint8 affine mapping both use.
* Latency: :func:`measure_latency` (warm-up excluded, median of repeats, per second of audio).
* Streaming: :class:`RingBuffer` keeps the last second of samples in a fixed array;
  :class:`StreamingClassifier` runs a window classifier every ``stride_samples`` as chunks arrive,
  and :func:`offline_windows` is the reference it must equal.

Notebook: 19_deploy_and_scale
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from course_lib.features import LogMel

__all__ = [
    "ArrayCalibrationReader",
    "ConvLogMel",
    "RingBuffer",
    "StreamingClassifier",
    "WaveformClassifier",
    "dequantize_affine",
    "export_onnx",
    "measure_latency",
    "offline_windows",
    "onnx_session",
    "quantize_affine",
    "quantize_dynamic_onnx",
    "quantize_static_onnx",
    "run_session",
]


# ------------------------------------------------------------------------ front end in the graph
class ConvLogMel(nn.Module):
    """The log-mel of a :class:`~course_lib.features.LogMel` with real operations only (exportable).

    The STFT of uncentred frames is a strided convolution: frame ``t``, bin ``k`` is
    ``sum_n w[n] x[t*hop + n] exp(-2j*pi*k*n/n_fft)``, so a ``Conv1d`` with stride ``hop_length``
    and ``2 * n_bins`` kernels ``w[n] cos(2*pi*k*n/n_fft)`` and ``-w[n] sin(2*pi*k*n/n_fft)`` gives its
    real and imaginary parts. Only the bins the mel filterbank reads are kept (up to ``fmax``): the
    others are multiplied by zero anyway. Then power, the mel matrix and ``10 log10`` with the same
    ``ref``, ``amin`` and ``top_db`` as the module it copies.

    Parameters
    ----------
    log_mel : LogMel
        The front end to copy; it must use uncentred frames (``center=False``): a centred STFT pads
        the recording, which a convolution over a stream cannot do.

    Shapes: ``(batch, n_samples)`` waveforms -> ``(batch, n_mels, n_frames)`` dB with
    ``n_frames = 1 + (n_samples - n_fft) // hop_length``.

    Notebook: 19_deploy_and_scale
    """

    kernels: Tensor
    filterbank: Tensor

    def __init__(self, log_mel: LogMel) -> None:
        super().__init__()
        if log_mel.center:
            raise ValueError("ConvLogMel copies uncentred frames only: build the LogMel with center=False "
                             "(kws.kws_log_mel does)")
        if not isinstance(log_mel.ref, (int, float)):
            raise ValueError(f"ConvLogMel needs a fixed numeric ref (a per-clip reference such as "
                             f"{log_mel.ref!r} is not a streaming front end); got {log_mel.ref!r}")
        self.n_fft, self.hop_length, self.n_mels = int(log_mel.n_fft), int(log_mel.hop_length), int(log_mel.n_mels)
        bank = log_mel.filterbank.detach().float().cpu()                  # (n_mels, 1 + n_fft // 2)
        used = torch.nonzero(bank.abs().sum(0) > 0).reshape(-1)
        n_bins = int(used.max()) + 1 if used.numel() else bank.shape[1]
        self.n_bins = n_bins
        window = torch.zeros(self.n_fft)
        win = log_mel.window.detach().float().cpu()
        offset = (self.n_fft - win.numel()) // 2                         # librosa centres a short window
        window[offset:offset + win.numel()] = win
        n = torch.arange(self.n_fft, dtype=torch.float64)
        k = torch.arange(n_bins, dtype=torch.float64)[:, None]
        angle = 2 * math.pi * k * n / self.n_fft
        kernels = torch.cat([torch.cos(angle), -torch.sin(angle)]) * window.double()
        self.register_buffer("kernels", kernels.float()[:, None, :])   # (2 n_bins, 1, n_fft)
        self.register_buffer("filterbank", bank[:, :n_bins].contiguous())
        self.db_offset = 10.0 * math.log10(max(float(log_mel.amin), float(log_mel.ref)))
        self.amin = float(log_mel.amin)
        self.top_db = None if log_mel.top_db is None else float(log_mel.top_db)

    def forward(self, waveforms: Tensor) -> Tensor:
        if waveforms.ndim != 2:
            raise ValueError(f"ConvLogMel expects waveforms (batch, n_samples); got {tuple(waveforms.shape)}")
        parts = torch.nn.functional.conv1d(waveforms[:, None, :], self.kernels, stride=self.hop_length)
        real, imag = parts[:, :self.n_bins], parts[:, self.n_bins:]
        mel = torch.matmul(self.filterbank, real * real + imag * imag)  # (batch, n_mels, n_frames)
        db = 10.0 * torch.log10(torch.clamp(mel, min=self.amin)) - self.db_offset
        if self.top_db is not None:
            db = torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - self.top_db)
        return db

    def extra_repr(self) -> str:
        return (f"n_fft={self.n_fft}, hop_length={self.hop_length}, n_bins={self.n_bins} (of "
                f"{1 + self.n_fft // 2}), n_mels={self.n_mels}")


class WaveformClassifier(nn.Module):
    """A front end followed by a classifier: ``(batch, n_samples)`` samples -> ``(batch, n_classes)``.

    Parameters
    ----------
    front_end : nn.Module
        Waveforms -> features (e.g. :class:`ConvLogMel`).
    classifier : nn.Module
        Features -> logits (e.g. ``course_lib.models.kws.DSCNN``).

    Notebook: 19_deploy_and_scale
    """

    def __init__(self, front_end: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.front_end, self.classifier = front_end, classifier

    def forward(self, waveforms: Tensor) -> Tensor:
        return self.classifier(self.front_end(waveforms))


# ---------------------------------------------------------------------------- export and run
def export_onnx(model: nn.Module, example: Tensor, path: str | os.PathLike[str], *,
                input_name: str = "inputs", output_name: str = "logits", opset_version: int = 18) -> Path:
    """Export ``model`` to one self-contained ONNX file with a dynamic batch axis.

    Uses ``torch.onnx.export(..., dynamo=True)``: the model is captured by ``torch.export`` (a graph
    of ATen operations, no Python left) and translated to ONNX by onnxscript. Weights are stored in
    the file itself (no ``.data`` side file), so its size on disk is the model's size.

    Parameters
    ----------
    model : nn.Module
        Put in eval mode for the export (restored afterwards).
    example : Tensor, shape (batch, ...)
        An input of the right shape and dtype; its first axis is exported as dynamic.
    path : path-like
        Where to write the ``.onnx`` file (folders are created).
    input_name, output_name : str
        Names of the graph's input and output.
    opset_version : int
        ONNX operator set.

    Returns
    -------
    Path
        ``path``.

    Notebook: 19_deploy_and_scale
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the exporter logs a warning per optional torchvision op it cannot register: noise here
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    modes = {module: module.training for module in model.modules()}   # a new wrapper is in training mode
    model.eval()
    arg_name = next(iter(inspect.signature(model.forward).parameters))
    try:
        torch.onnx.export(model, (example,), str(path), dynamo=True, external_data=False,
                          input_names=[input_name], output_names=[output_name], opset_version=opset_version,
                          dynamic_shapes={arg_name: {0: torch.export.Dim("batch", min=1, max=4096)}},
                          verbose=False)
    finally:
        for module, training in modes.items():   # each submodule as it was (not the wrapper's mode for all)
            module.training = training
    if not path.is_file():
        raise RuntimeError(f"torch.onnx.export wrote no file at {path}")
    return path


def onnx_session(path: str | os.PathLike[str], threads: int = 1):
    """An ONNX Runtime CPU session with a fixed number of threads (for comparable latencies).

    Parameters
    ----------
    path : path-like
        The ``.onnx`` file.
    threads : int
        Intra-op threads (inter-op: 1, sequential execution).

    Returns
    -------
    onnxruntime.InferenceSession

    Notebook: 19_deploy_and_scale
    """
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ImportError("onnxruntime is not installed: run `make install` (it is in requirements.lock), "
                          "or `pip install onnxruntime`") from err
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no ONNX file there (export it first with deploy.export_onnx)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3          # errors only: the CPU provider's notes are not for students
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_session(session, inputs: np.ndarray | Tensor) -> np.ndarray:
    """Run a one-input session on ``inputs`` (float32) and return its first output.

    Parameters
    ----------
    session : onnxruntime.InferenceSession
    inputs : array or Tensor, shape (batch, ...)

    Returns
    -------
    ndarray, shape (batch, ...)

    Notebook: 19_deploy_and_scale
    """
    if isinstance(inputs, Tensor):
        inputs = inputs.detach().cpu().numpy()
    return session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(inputs, dtype=np.float32)})[0]


# ------------------------------------------------------------------------------- quantisation
def quantize_affine(x: np.ndarray, n_bits: int = 8) -> tuple[np.ndarray, float, int]:
    """Asymmetric (affine) unsigned quantisation of a whole tensor, as ONNX Runtime's uint8.

    The range always contains 0 (so zero padding and ReLU's zeros are exact):
    ``r_min = min(min(x), 0)``, ``r_max = max(max(x), 0)``, ``scale = (r_max - r_min) / (2^b - 1)``
    (1.0 when the range is empty), ``zero_point = round(-r_min / scale)``,
    ``q = clip(round(x / scale) + zero_point, 0, 2^b - 1)``; rounding half to even (``np.rint``).

    Parameters
    ----------
    x : ndarray
        Real values.
    n_bits : int
        Bits per value.

    Returns
    -------
    q : ndarray of int64, same shape as ``x``
        In ``[0, 2^n_bits - 1]``.
    scale : float
        Real value of one step.
    zero_point : int
        The integer that represents 0.0.

    Notebook: 19_deploy_and_scale
    """
    x = np.asarray(x, dtype=np.float64)
    q_max = 2 ** int(n_bits) - 1
    r_min, r_max = min(float(x.min(initial=0.0)), 0.0), max(float(x.max(initial=0.0)), 0.0)
    scale = (r_max - r_min) / q_max if r_max > r_min else 1.0
    zero_point = int(np.rint(-r_min / scale))
    q = np.clip(np.rint(x / scale) + zero_point, 0, q_max).astype(np.int64)
    return q, float(scale), zero_point


def dequantize_affine(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """``(q - zero_point) * scale``: the real values int8 arithmetic stands for.

    Parameters
    ----------
    q : ndarray of int
    scale : float
    zero_point : int

    Returns
    -------
    ndarray of float64, same shape as ``q``

    Notebook: 19_deploy_and_scale
    """
    return (np.asarray(q, dtype=np.float64) - zero_point) * float(scale)


def quantize_dynamic_onnx(path_in: str | os.PathLike[str], path_out: str | os.PathLike[str],
                          op_types: Sequence[str] | None = None) -> Path:
    """Dynamic int8 quantisation with ``onnxruntime.quantization.quantize_dynamic``.

    Weights are stored as int8 once; each activation's scale is measured on the fly at every call
    (no calibration data), so every quantised layer quantises its input at run time.

    Parameters
    ----------
    path_in, path_out : path-like
        The float model and where to write the quantised one.
    op_types : sequence of str, optional
        Operator types to quantise (default: ONNX Runtime's, which include ``Conv``, ``MatMul``,
        ``Gemm``, ``LSTM``...).

    Returns
    -------
    Path

    Notebook: 19_deploy_and_scale
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path_out = Path(path_out)
    prepared = _pre_process(path_in, path_out)
    quantize_dynamic(str(prepared), str(path_out), weight_type=QuantType.QInt8,
                     op_types_to_quantize=list(op_types) if op_types else None)
    prepared.unlink(missing_ok=True)
    return path_out


def _pre_process(path_in: str | os.PathLike[str], path_out: Path) -> Path:
    """ONNX Runtime's recommended step before quantising: shape inference and graph optimisation
    (batch norm folded into the convolution before it), written beside ``path_out``."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = path_out.with_name(path_out.stem + ".prepared.onnx")
    path_out.parent.mkdir(parents=True, exist_ok=True)
    quant_pre_process(str(path_in), str(prepared), skip_symbolic_shape=True)
    return prepared


class ArrayCalibrationReader:
    """Feeds calibration inputs to ``onnxruntime.quantization.quantize_static``, one batch per call.

    Subclasses nothing at import time so ``course_lib`` imports without onnxruntime; ONNX Runtime
    only calls :meth:`get_next` (and :meth:`rewind`).

    Parameters
    ----------
    input_name : str
        The graph input's name.
    batches : iterable of array or Tensor
        Typical inputs (e.g. training log-mels), each ``(batch, ...)`` float32.

    Notebook: 19_deploy_and_scale
    """

    def __init__(self, input_name: str, batches: Iterable[np.ndarray | Tensor]) -> None:
        self.input_name = input_name
        self.batches = [np.ascontiguousarray(b.detach().cpu().numpy() if isinstance(b, Tensor) else b,
                                             dtype=np.float32) for b in batches]
        if not self.batches:
            raise ValueError("ArrayCalibrationReader needs at least one calibration batch")
        self.position = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= len(self.batches):
            return None
        self.position += 1
        return {self.input_name: self.batches[self.position - 1]}

    def rewind(self) -> None:
        self.position = 0


def quantize_static_onnx(path_in: str | os.PathLike[str], path_out: str | os.PathLike[str],
                         calibration: ArrayCalibrationReader, per_channel: bool = True,
                         nodes_to_exclude: Sequence[str] = ()) -> Path:
    """Static int8 quantisation (QDQ format) with activation ranges measured on calibration data.

    ``quant_pre_process`` first (shape inference, graph optimisation: batch norm folded into the
    convolutions), then ``quantize_static`` with MinMax calibration: every activation gets a fixed
    scale and zero point, so ONNX Runtime can run a chain of int8 convolutions (``QLinearConv``)
    without measuring ranges at run time.

    Parameters
    ----------
    path_in, path_out : path-like
    calibration : ArrayCalibrationReader
    per_channel : bool
        One weight scale per output channel (better for convolutions whose channels differ in range).
    nodes_to_exclude : sequence of str
        Nodes left in float (e.g. a front end whose dB output needs the dynamic range).

    Returns
    -------
    Path

    Notebook: 19_deploy_and_scale
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    class _Reader(CalibrationDataReader):
        def get_next(self):
            return calibration.get_next()

        def rewind(self):
            calibration.rewind()

    path_out = Path(path_out)
    prepared = _pre_process(path_in, path_out)
    calibration.rewind()
    quantize_static(str(prepared), str(path_out), _Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=per_channel,
                    nodes_to_exclude=list(nodes_to_exclude) or None)
    prepared.unlink(missing_ok=True)
    return path_out


# ------------------------------------------------------------------------------------ latency
def measure_latency(run: Callable[[], object], audio_seconds: float, n_warmup: int = 3, n_repeats: int = 20,
                    clock: Callable[[], float] = time.perf_counter) -> float:
    """Median seconds of compute per second of audio of one call of ``run``, warm-up excluded.

    ``run()`` is called ``n_warmup`` times untimed (first calls allocate memory, pick kernels, fill
    caches), then ``n_repeats`` times, each timed on its own with ``clock``; the median (robust to
    the odd interrupted call) is divided by the seconds of audio one call processes. Fix the
    thread count before measuring (``rt.threads`` for torch, ``onnx_session(threads=...)``).

    Parameters
    ----------
    run : callable
        One inference, no arguments.
    audio_seconds : float
        Seconds of audio one call processes.
    n_warmup, n_repeats : int
    clock : callable
        Seconds as a float (``time.perf_counter``).

    Returns
    -------
    float
        Seconds of compute per second of audio (the real-time factor; < 1 is faster than real time).

    Notebook: 19_deploy_and_scale
    """
    if audio_seconds <= 0 or n_repeats < 1 or n_warmup < 0:
        raise ValueError(f"need audio_seconds > 0, n_repeats >= 1, n_warmup >= 0; got {audio_seconds}, "
                         f"{n_repeats}, {n_warmup}")
    for _ in range(n_warmup):
        run()
    times = []
    for _ in range(n_repeats):
        start = clock()
        run()
        times.append(clock() - start)
    return statistics.median(times) / audio_seconds


# ---------------------------------------------------------------------------------- streaming
class RingBuffer:
    """The last ``capacity`` samples of a stream in a fixed array: no allocation per chunk.

    A write index goes round the array; :meth:`latest` reads the newest ``n`` samples in time
    order (two slices when they wrap around the end).

    Parameters
    ----------
    capacity : int
        Samples kept.

    Notebook: 19_deploy_and_scale
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1 sample; got {capacity}")
        self.buffer = np.zeros(int(capacity), np.float32)
        self.write_index = 0        # where the next sample goes
        self.total = 0              # samples pushed since the start

    def push(self, chunk: np.ndarray | Tensor) -> None:
        """Append samples (only the last ``capacity`` of a long chunk can be kept)."""
        x = np.asarray(chunk.detach().cpu() if isinstance(chunk, Tensor) else chunk, dtype=np.float32).reshape(-1)
        capacity = self.buffer.size
        self.total += x.size
        if x.size >= capacity:
            self.buffer[:] = x[-capacity:]
            self.write_index = 0
            return
        end = self.write_index + x.size
        if end <= capacity:
            self.buffer[self.write_index:end] = x
        else:
            first = capacity - self.write_index
            self.buffer[self.write_index:] = x[:first]
            self.buffer[:x.size - first] = x[first:]
        self.write_index = end % capacity

    def latest(self, n: int) -> np.ndarray:
        """The newest ``n`` samples, oldest first, shape ``(n,)``."""
        if not 0 <= n <= min(self.buffer.size, self.total):
            raise ValueError(f"asked for the latest {n} samples; the buffer holds {min(self.buffer.size, self.total)}")
        start = (self.write_index - n) % self.buffer.size
        if start + n <= self.buffer.size:
            return self.buffer[start:start + n].copy()
        return np.concatenate([self.buffer[start:], self.buffer[:start + n - self.buffer.size]])


class StreamingClassifier:
    """Classify the last ``window_samples`` every ``stride_samples``, as audio arrives in chunks.

    Window ``j`` is samples ``j * stride_samples ... j * stride_samples + window_samples - 1`` of
    the stream: the windows of :func:`offline_windows` on the whole recording, computed as soon as
    their last sample has arrived, from a :class:`RingBuffer` of one window.

    Parameters
    ----------
    run : callable
        ``(batch, window_samples)`` float32 array -> ``(batch, n_outputs)`` array (e.g. an ONNX
        session through :func:`run_session`).
    window_samples, stride_samples : int

    Notebook: 19_deploy_and_scale
    """

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], window_samples: int, stride_samples: int) -> None:
        self.run = run
        self.window_samples, self.stride_samples = int(window_samples), int(stride_samples)
        self.ring = RingBuffer(self.window_samples)
        self.next_window_end = self.window_samples

    def process(self, chunk: np.ndarray | Tensor) -> list[np.ndarray]:
        """Feed the next samples; return the outputs ``(n_outputs,)`` of the windows they complete."""
        x = np.asarray(chunk.detach().cpu() if isinstance(chunk, Tensor) else chunk, dtype=np.float32).reshape(-1)
        outputs = []
        start = 0
        while start < x.size:            # push up to each window end, so no window is overwritten
            take = min(x.size - start, self.next_window_end - self.ring.total)
            self.ring.push(x[start:start + take])
            start += take
            if self.ring.total == self.next_window_end:
                outputs.append(np.asarray(self.run(self.ring.latest(self.window_samples)[None]))[0])
                self.next_window_end += self.stride_samples
        return outputs


def offline_windows(run: Callable[[np.ndarray], np.ndarray], waveform: np.ndarray | Tensor, window_samples: int,
                    stride_samples: int, batch_size: int = 64) -> np.ndarray:
    """Outputs of ``run`` on every window of a whole recording: the reference for streaming.

    Parameters
    ----------
    run : callable
        ``(batch, window_samples)`` -> ``(batch, n_outputs)``.
    waveform : array or Tensor, shape (n_samples,)
    window_samples, stride_samples : int
    batch_size : int
        Windows per call.

    Returns
    -------
    ndarray, shape (n_windows, n_outputs), ``n_windows = 1 + (n_samples - window_samples) // stride_samples``

    Notebook: 19_deploy_and_scale
    """
    x = np.asarray(waveform.detach().cpu() if isinstance(waveform, Tensor) else waveform, dtype=np.float32).reshape(-1)
    if x.size < window_samples:
        raise ValueError(f"the recording ({x.size} samples) is shorter than one window ({window_samples})")
    windows = np.lib.stride_tricks.sliding_window_view(x, window_samples)[::stride_samples]
    return np.concatenate([np.asarray(run(np.ascontiguousarray(windows[i:i + batch_size])))
                           for i in range(0, len(windows), batch_size)])
