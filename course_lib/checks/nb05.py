"""Checks for 05_from_filters_to_cnns: output lengths, receptive fields, the article's CNN fixed.

Each check compares the student's function with ``course_lib.models`` on several inputs and, before
the generic comparison, recognises the usual mistakes (a forgotten ``+ 1`` or dilation, strides not
multiplied through the stack, a head that still assumes a fixed input length) to name them.

Notebook: 05_from_filters_to_cnns
"""

from __future__ import annotations

from course_lib.checks import Case, compare_scalar, exercise_check

__all__: list[str] = []

_LENGTH_CASES = [
    # (length, kernel, stride, padding, dilation)
    (8, 3, 1, 1, 1),
    (8, 2, 2, 0, 1),
    (16000, 80, 4, 0, 1),
    (101, 5, 2, 2, 1),
    (50, 3, 1, 0, 4),
    (7, 3, 3, 1, 2),
]


@exercise_check("05.1", "output length of a convolution or pooling layer")
def _check_conv_output_length(candidate):
    from course_lib.models import conv_output_length

    for length, kernel, stride, padding, dilation in _LENGTH_CASES:
        case = Case(f"length={length}, kernel={kernel}, stride={stride}, padding={padding}, "
                    f"dilation={dilation}")
        got = case.call(candidate, length, kernel, stride, padding, dilation)
        expected = conv_output_length(length, kernel, stride, padding, dilation)
        if isinstance(got, float) and not float(got).is_integer():
            case.fail(f"got the fraction {got:.4g}: a layer has a whole number of outputs; "
                      "use floor division // (PyTorch rounds down)")
        span_no_dilation = (length + 2 * padding - kernel) // stride + 1
        if dilation > 1 and got == span_no_dilation and span_no_dilation != expected:
            case.fail(f"got {got}, expected {expected}: a dilated kernel spans "
                      "dilation * (kernel - 1) + 1 samples, not kernel")
        if got == expected - 1:
            case.fail(f"got {got}, expected {expected}: count the first position too "
                      "(... // stride + 1)")
        if got == (length + 2 * padding - dilation * (kernel - 1) - 1 + stride - 1) // stride + 1 \
                and got != expected:
            case.fail(f"got {got}, expected {expected}: round down (floor), as PyTorch does "
                      "with ceil_mode=False")
        if stride > 1 and got == length + 2 * padding - dilation * (kernel - 1) and got != expected:
            case.fail(f"got {got}, expected {expected}: divide the positions by the stride")
        compare_scalar(case, got, expected, atol=0, rtol=0, name="output length")
        yield case


_FIELD_CASES = [
    ("one 3-tap conv", [(3, 1, 1)]),
    ("conv3, pool2, conv3 (the article's first layers)", [(3, 1, 1), (2, 2, 1), (3, 1, 1)]),
    ("conv3, pool2, conv3, pool2", [(3, 1, 1), (2, 2, 1), (3, 1, 1), (2, 2, 1)]),
    ("a raw-waveform front end: conv80/4, pool4, conv3", [(80, 4, 1), (4, 4, 1), (3, 1, 1)]),
    ("a dilated stack, dilations 1, 2, 4, 8", [(3, 1, 1), (3, 1, 2), (3, 1, 4), (3, 1, 8)]),
]


@exercise_check("05.2", "receptive field of a stack of layers")
def _check_receptive_field(candidate):
    from course_lib.models import receptive_field

    for description, layers in _FIELD_CASES:
        case = Case(f"{description}: layers {layers} as (kernel, stride, dilation)")
        got = case.call(candidate, [tuple(layer) for layer in layers])
        expected = receptive_field(layers)
        no_jump = 1 + sum((k - 1) * d for k, _, d in layers)
        if got == no_jump and no_jump != expected:
            case.fail(f"got {got}, expected {expected}: a layer after a stride-s layer steps s "
                      "input samples per tap; multiply (kernel - 1) * dilation by the product of "
                      "all earlier strides")
        if got == sum(k for k, _, _ in layers):
            if got != expected:
                case.fail(f"got {got}, expected {expected}: kernels do not simply add; each "
                          "layer adds (kernel - 1) * dilation * jump, starting from 1")
        compare_scalar(case, got, expected, atol=0, rtol=0, name="receptive field")
        yield case


@exercise_check("05.3", "the article's CNN, fixed")
def _check_fixed_article_cnn(candidate):
    import torch
    from torch import nn

    case = Case("building the model (no arguments)")
    model = case.call(candidate)
    if not isinstance(model, nn.Module):
        case.fail(f"return the nn.Module itself, got {type(model).__name__}")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv1d)]
    if [(m.in_channels, m.out_channels) for m in convs] != [(1, 64), (64, 64)]:
        case.fail("keep the article's two convolutions: Conv1d(1, 64, 3, padding=1) and "
                  "Conv1d(64, 64, 3, padding=1)")
    if [(m.in_features, m.out_features) for m in linears] != [(128, 64), (64, 10)]:
        case.fail("keep the article's head Linear(128, 64) -> Linear(64, 10); make the features "
                  "fit it (64 channels x 2 positions = 128) instead of changing it")
    yield case
    model.eval()
    for batch, length in [(1, 8), (4, 8), (2, 16), (3, 50)]:
        case = Case(f"an input of shape ({batch}, 1, {length}) (batch, channels, time)")
        adaptive = ("a fixed flatten only fits length 8; pool to a fixed size first "
                    "(nn.AdaptiveMaxPool1d(2)) so any length gives 64 x 2 = 128 features")
        try:
            with torch.no_grad():
                out = model(torch.zeros(batch, 1, length))
        except RuntimeError as err:
            hint = f": {adaptive}" if length != 8 and "shapes cannot be multiplied" in str(err) \
                else ""
            case.fail(f"the model raised RuntimeError: {err}{hint}")
        except Exception as err:  # noqa: BLE001 - any error in the student's model is a hint
            case.fail(f"the model raised {type(err).__name__}: {err}")
        if not isinstance(out, torch.Tensor):
            case.fail(f"the model returned {type(out).__name__}, expected a tensor of logits")
        if tuple(out.shape) != (batch, 10):
            hint = f": {adaptive}" if length != 8 else ""
            case.fail(f"output shape {tuple(out.shape)}, expected ({batch}, 10){hint}")
        yield case
