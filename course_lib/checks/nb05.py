"""Checks for 05_from_filters_to_cnns: output lengths, receptive fields, the article's CNN fixed.

Each check compares the student's function with ``course_lib.models`` on several inputs and, before
the generic comparison, recognises the usual mistakes (a forgotten ``+ 1`` or dilation, strides not
multiplied through the stack, a head that still assumes a fixed input length) to name them.

Notebook: 05_from_filters_to_cnns
"""

from __future__ import annotations

from course_lib.checks import Case, compare_scalar, exercise_check, record_calls

__all__: list[str] = []

_LENGTH_CASES = [
    # (length, kernel, stride, padding, dilation)
    (8, 2, 2, 0, 1),
    (8, 3, 1, 1, 1),
    (16000, 80, 4, 0, 1),
    (101, 5, 2, 2, 1),
    (50, 3, 1, 0, 4),
    (7, 3, 3, 1, 2),
]


def _torch_output_length(length: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """What PyTorch itself returns: run ``F.conv1d`` on a zero input of ``length`` samples."""
    import torch
    import torch.nn.functional as F

    out = F.conv1d(torch.zeros(1, 1, length), torch.zeros(1, 1, kernel), stride=stride, padding=padding,
                   dilation=dilation)
    return int(out.shape[-1])


@exercise_check("05.1", "output length of a convolution or pooling layer")
def _check_conv_output_length(candidate):
    for length, kernel, stride, padding, dilation in _LENGTH_CASES:
        case = Case(f"length={length}, kernel={kernel}, stride={stride}, padding={padding}, "
                    f"dilation={dilation}")
        got = case.call(candidate, length, kernel, stride, padding, dilation)
        expected = _torch_output_length(length, kernel, stride, padding, dilation)
        if isinstance(got, float) and not float(got).is_integer():
            case.fail(f"got the fraction {got:.4g}: a layer has a whole number of outputs; "
                      "use floor division // (PyTorch rounds down)")
        if got == (length + 2 * padding - dilation * (kernel - 1) - 1 + stride - 1) // stride + 1 \
                and got != expected:
            case.fail(f"got {got}, expected {expected}: round down (floor), as PyTorch does "
                      "with ceil_mode=False")
        span_no_dilation = (length + 2 * padding - kernel) // stride + 1
        if dilation > 1 and got == span_no_dilation and span_no_dilation != expected:
            case.fail(f"got {got}, expected {expected}: a dilated kernel spans "
                      "dilation * (kernel - 1) + 1 samples, not kernel")
        if padding > 0 and got == (length + padding - dilation * (kernel - 1) - 1) // stride + 1 \
                and got != expected:
            case.fail(f"got {got}, expected {expected}: padding is added at *both* ends, so the "
                      "padded length is length + 2 * padding")
        if got == expected - 1:
            case.fail(f"got {got}, expected {expected}: count the first position too "
                      "(... // stride + 1)")
        if stride > 1 and got == length + 2 * padding - dilation * (kernel - 1) and got != expected:
            case.fail(f"got {got}, expected {expected}: divide the positions by the stride")
        if got == (length + 2 * padding - dilation * (kernel - 1)) // stride + 1 and got != expected:
            case.fail(f"got {got}, expected {expected}: a kernel of {kernel} taps spans "
                      "dilation * (kernel - 1) + 1 samples; the last window must start at or before "
                      "length + 2 * padding - span, so subtract the whole span")
        compare_scalar(case, got, expected, atol=0, rtol=0, name="output length")
        yield case


_FIELD_CASES = [
    ("one 3-tap conv", [(3, 1, 1)]),
    ("conv3, pool2, conv3 (the article's first layers)", [(3, 1, 1), (2, 2, 1), (3, 1, 1)]),
    ("conv3, pool2, conv3, pool2", [(3, 1, 1), (2, 2, 1), (3, 1, 1), (2, 2, 1)]),
    ("a raw-waveform front end: conv80/4, pool4, conv3", [(80, 4, 1), (4, 4, 1), (3, 1, 1)]),
    ("a dilated stack, dilations 1, 2, 4, 8", [(3, 1, 1), (3, 1, 2), (3, 1, 4), (3, 1, 8)]),
]


def _field(layers, *, jump_first: bool = False, dilation: bool = True, taps: bool = False) -> int:
    """Receptive field as a student might compute it, with one step changed (see the keywords)."""
    field, jump = 1, 1
    for kernel, stride, dil in layers:
        if jump_first:
            jump *= stride
        field += (kernel if taps else kernel - 1) * (dil if dilation else 1) * jump
        if not jump_first:
            jump *= stride
    return field


@exercise_check("05.2", "receptive field of a stack of layers")
def _check_receptive_field(candidate):
    for description, layers in _FIELD_CASES:
        case = Case(f"{description}: layers {layers} as (kernel, stride, dilation)")
        got = case.call(candidate, [tuple(layer) for layer in layers])
        expected = _field(layers)
        no_jump = 1 + sum((k - 1) * d for k, _, d in layers)
        if got == no_jump and no_jump != expected:
            case.fail(f"got {got}, expected {expected}: a layer after a stride-s layer steps s "
                      "input samples per tap; multiply (kernel - 1) * dilation by the product of "
                      "all earlier strides")
        if got == sum(k for k, _, _ in layers):
            if got != expected:
                case.fail(f"got {got}, expected {expected}: kernels do not simply add; each "
                          "layer adds (kernel - 1) * dilation * jump, starting from 1")
        if got != expected and got == _field(layers, jump_first=True):
            case.fail(f"got {got}, expected {expected}: the jump was multiplied by a layer's stride "
                      "*before* that layer's own span was added. A layer's stride spaces the "
                      "*following* layers' taps, not its own: add (kernel - 1) * dilation * jump "
                      "first, then update jump *= stride")
        if got != expected and got == _field(layers, dilation=False):
            case.fail(f"got {got}, expected {expected}: the dilation is missing; a dilated kernel "
                      "spans (kernel - 1) * dilation + 1 samples, so it adds (kernel - 1) * dilation * jump")
        if got != expected and got == expected - 1:
            case.fail(f"got {got}, expected {expected}: start from a field of 1 (one output sample "
                      "sees one input sample before any layer), not 0")
        if got != expected and got == _field(layers, taps=True):
            case.fail(f"got {got}, expected {expected}: a k-tap kernel widens the field by k - 1 "
                      "samples (it already covers the one it is centred on), so add "
                      "(kernel - 1) * dilation * jump")
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
    if [(m.in_channels, m.out_channels, m.kernel_size, m.padding) for m in convs] \
            != [(1, 64, (3,), (1,)), (64, 64, (3,), (1,))]:
        found = ", ".join(f"Conv1d({m.in_channels}, {m.out_channels}, {m.kernel_size[0]}, "
                          f"padding={m.padding[0]})" for m in convs)
        case.fail("keep the article's two convolutions: Conv1d(1, 64, 3, padding=1) and "
                  f"Conv1d(64, 64, 3, padding=1) (found {found or 'none'})")
    if [(m.in_features, m.out_features) for m in linears] != [(128, 64), (64, 10)]:
        case.fail("keep the article's head Linear(128, 64) -> Linear(64, 10); make the features "
                  "fit it (64 channels x 2 positions = 128) instead of changing it")
    if any(isinstance(m, (nn.Softmax, nn.LogSoftmax)) for m in model.modules()):
        case.fail("the model ends with a (log-)softmax: return raw logits. nn.CrossEntropyLoss applies "
                  "log-softmax itself, so a softmax in the model squashes the gradients")
    yield case
    model.eval()
    gen = torch.Generator().manual_seed(5)
    for batch, length in [(1, 8), (4, 8), (2, 16), (3, 50)]:
        case = Case(f"a random input of shape ({batch}, 1, {length}) (batch, channels, time)")
        adaptive = ("a fixed flatten only fits length 8; pool to a fixed size first "
                    "(nn.AdaptiveMaxPool1d(2)) so any length gives 64 x 2 = 128 features")
        x = torch.randn(batch, 1, length, generator=gen)
        try:
            out, calls = record_calls(model, x)
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
        # A ReLU between two layers means the second one never sees a negative input.
        seen: dict[int, tuple] = {}
        for module, layer_input, layer_output in calls:
            for i, layer in enumerate(convs + linears):
                if module is layer:
                    seen.setdefault(i, (layer_input, layer_output))
        names = ["Conv1d(1, 64)", "Conv1d(64, 64)", "Linear(128, 64)", "Linear(64, 10)"]
        linear_between = [i for i in range(3) if i + 1 in seen and bool((seen[i + 1][0] < 0).any())]
        if len(linear_between) == 3:
            case.fail("there is no nonlinearity anywhere: without a ReLU, Linear(128, 64) -> "
                      "Linear(64, 10) collapses into a single Linear layer (W2 W1 is one matrix), as "
                      "shown earlier in this notebook. Put an nn.ReLU after each convolution and "
                      "between the two Linear layers")
        if linear_between:
            i = linear_between[0]
            case.fail(f"{names[i + 1]} receives negative inputs, so nothing nonlinear sits between "
                      f"{names[i]} and it: add an nn.ReLU after {names[i]}"
                      + (" (two Linear layers in a row are one linear map)" if i == 2 else ""))
        if torch.allclose(out.exp().sum(dim=1), torch.ones(batch), atol=1e-4) or \
                torch.allclose(out.sum(dim=1), torch.ones(batch), atol=1e-4) and bool((out >= 0).all()):
            case.fail("the outputs are probabilities (a softmax at the end): return raw logits, "
                      "nn.CrossEntropyLoss applies log-softmax itself")
        if 3 in seen and bool((seen[3][1] < 0).any()) and not bool((out < 0).any()):
            case.fail("the logits are never negative: a ReLU (or softmax) after the last Linear "
                      "clips them. The model must output raw logits; nn.CrossEntropyLoss does the rest")
        yield case
