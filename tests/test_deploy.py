"""course_lib.deploy: the exportable front end, ONNX export parity, int8 quantisation, latency, streaming."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib import deploy, kws
from course_lib.models.kws import DSCNN

onnxruntime = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def small_kws():
    """A small DSCNN on the KWS log-mel of noise, with its normalisation measured."""
    torch.manual_seed(0)
    log_mel = kws.kws_log_mel(16000, device="cpu")
    waveforms = 0.1 * torch.randn(6, 16000, generator=torch.Generator().manual_seed(1))
    features = log_mel(waveforms)
    model = DSCNN(n_mels=40, n_classes=5, channels=16, n_blocks=2).eval()
    model.fit_normalization([features])
    return log_mel, model, waveforms, features


@pytest.fixture(scope="module")
def exported(small_kws, tmp_path_factory):
    _, model, _, features = small_kws
    return deploy.export_onnx(model, features[:2], tmp_path_factory.mktemp("onnx") / "kws.onnx", input_name="log_mel")


def test_conv_log_mel_equals_the_stft_front_end(small_kws):
    log_mel, _, waveforms, features = small_kws
    conv = deploy.ConvLogMel(log_mel)
    assert conv.n_bins < 1 + log_mel.n_fft // 2          # bins above fmax dropped
    got = conv(waveforms)
    assert got.shape == features.shape
    assert (got - features).abs().max().item() < 1e-3     # dB, float32 arithmetic in another order


def test_conv_log_mel_refuses_centred_frames():
    from course_lib.features import LogMel

    with pytest.raises(ValueError, match="center=False"):
        deploy.ConvLogMel(LogMel(16000, n_fft=512, hop_length=128, n_mels=20, center=True, device="cpu"))


def test_onnx_export_parity_with_any_batch_size(small_kws, exported):
    _, model, _, features = small_kws
    session = deploy.onnx_session(exported, threads=1)
    for batch in (1, 6):                                   # the batch axis is dynamic
        with torch.no_grad():
            expected = model(features[:batch]).numpy()
        got = deploy.run_session(session, features[:batch])
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-4
    assert not exported.with_suffix(".onnx.data").exists()  # weights inside the one file


def test_export_of_a_wrapper_leaves_the_submodules_modes_alone(small_kws, tmp_path):
    log_mel, model, waveforms, _ = small_kws
    model.eval()
    wrapper = deploy.WaveformClassifier(deploy.ConvLogMel(log_mel), model)   # a new module: training mode
    path = deploy.export_onnx(wrapper, waveforms[:2], tmp_path / "full.onnx", input_name="waveform")
    assert not model.training and wrapper.training
    got = deploy.run_session(deploy.onnx_session(path), waveforms)
    with torch.no_grad():
        expected = model(log_mel(waveforms)).numpy()
    assert np.abs(got - expected).max() < 1e-3


def test_torch_export_parity(small_kws):
    _, model, _, features = small_kws
    program = torch.export.export(model, (features[:2],),
                                  dynamic_shapes={"spec": {0: torch.export.Dim("batch", min=1, max=64)}})
    with torch.no_grad():
        assert torch.allclose(program.module()(features), model(features), atol=1e-5)


def test_quantised_models_are_smaller_and_still_close(small_kws, exported, tmp_path):
    _, model, _, features = small_kws
    with torch.no_grad():
        expected = model(features).numpy()
    spread = expected.max() - expected.min()
    calibration = deploy.ArrayCalibrationReader("log_mel", features.split(3))
    for path in (deploy.quantize_dynamic_onnx(exported, tmp_path / "dynamic.onnx"),
                 deploy.quantize_static_onnx(exported, tmp_path / "static.onnx", calibration)):
        assert path.stat().st_size < exported.stat().st_size
        got = deploy.run_session(deploy.onnx_session(path), features)
        assert np.abs(got - expected).max() < 0.1 * spread, path.name
        assert not path.with_name(path.stem + ".prepared.onnx").exists()


def test_quantize_affine_equals_onnx_runtimes_rule():
    from onnx import TensorProto
    from onnxruntime.quantization.quant_utils import compute_scale_zp, quantize_nparray

    x = np.random.default_rng(0).normal(0.2, 1.0, 200).astype(np.float32)
    q, scale, zero_point = deploy.quantize_affine(x)
    ort_zero_point, ort_scale = compute_scale_zp(np.float32(min(x.min(), 0)), np.float32(max(x.max(), 0)),
                                                 np.array(0, np.uint8), np.array(255, np.uint8))
    assert zero_point == int(ort_zero_point) and scale == pytest.approx(float(ort_scale), rel=1e-6)
    assert np.array_equal(q, quantize_nparray(TensorProto.UINT8, x, ort_scale, ort_zero_point))
    assert np.abs(deploy.dequantize_affine(q, scale, zero_point) - x).max() <= scale / 2 + 1e-6
    assert deploy.dequantize_affine(*deploy.quantize_affine(np.array([0.0, 1.5, 3.0])))[0] == 0.0   # 0 exact


def test_quantize_affine_edge_cases():
    q, scale, zero_point = deploy.quantize_affine(np.zeros(4))
    assert scale == 1.0 and zero_point == 0 and not q.any()
    q, scale, zero_point = deploy.quantize_affine(np.array([1.0, 2.0]), n_bits=4)
    assert zero_point == 0 and scale == pytest.approx(2.0 / 15) and q.max() == 15


def test_measure_latency_takes_the_median_of_the_timed_calls_only():
    durations = iter([5.0, 5.0, 0.1, 0.3, 0.2, 9.0, 0.25])
    now = [0.0]

    def run():
        now[0] += next(durations)

    latency = deploy.measure_latency(run, audio_seconds=2.0, n_warmup=2, n_repeats=5, clock=lambda: now[0])
    assert latency == pytest.approx(0.25 / 2.0)
    with pytest.raises(ValueError):
        deploy.measure_latency(run, audio_seconds=0.0)


def test_ring_buffer_keeps_the_latest_samples_in_order():
    rng = np.random.default_rng(0)
    ring, history = deploy.RingBuffer(50), []
    for size in rng.integers(0, 80, 40):
        chunk = rng.standard_normal(size).astype(np.float32)
        ring.push(chunk)
        history.extend(chunk)
        n = min(50, len(history))
        assert np.array_equal(ring.latest(n), np.asarray(history[-n:], np.float32)) if n else True
    with pytest.raises(ValueError):
        ring.latest(51)


@pytest.mark.parametrize("max_chunk", [1, 700, 5000])
def test_streaming_equals_offline(max_chunk):
    weights = np.random.default_rng(1).standard_normal((400, 3)).astype(np.float32)
    run = lambda windows: np.tanh(windows @ weights)            # any window -> outputs map
    recording = np.random.default_rng(2).standard_normal(4321).astype(np.float32)
    offline = deploy.offline_windows(run, recording, window_samples=400, stride_samples=130, batch_size=7)
    streamer = deploy.StreamingClassifier(run, window_samples=400, stride_samples=130)
    rng, start, outputs = np.random.default_rng(3), 0, []
    while start < recording.size:
        size = int(rng.integers(1, max_chunk + 1))
        outputs += streamer.process(recording[start:start + size])
        start += size
    assert offline.shape == (1 + (4321 - 400) // 130, 3)
    # the same windows; a batched matrix product may round differently from a single row
    assert np.abs(np.stack(outputs) - offline).max() < 1e-5
