"""Checks for 07_time_frequency_cnns: a time-frequency separable block, a frequency channel.

Notebook: 07_time_frequency_cnns
"""

from __future__ import annotations

from course_lib.checks import Case, compare_arrays, exercise_check, matches, record_calls

__all__: list[str] = []


@exercise_check("07.1", "a time-frequency separable block")
def _check_separable_block(candidate):
    import torch
    from torch import nn

    wanted = "Conv2d (k_freq x 1) -> BatchNorm2d -> ReLU -> Conv2d (1 x k_time) -> BatchNorm2d -> ReLU"
    for in_ch, out_ch, kf, kt, shape in [(1, 8, 7, 5, (40, 30)), (4, 6, 3, 9, (17, 11)),
                                         (2, 2, 5, 5, (9, 4))]:
        case = Case(f"separable_block(in_ch={in_ch}, out_ch={out_ch}, k_freq={kf}, k_time={kt}) "
                    f"on a (2, {in_ch}, {shape[0]}, {shape[1]}) batch")
        block = case.call(candidate, in_ch, out_ch, kf, kt)
        if not isinstance(block, nn.Module):
            case.fail(f"return an nn.Module, got {type(block).__name__}")
        kernels = [m.kernel_size for m in block.modules() if isinstance(m, nn.Conv2d)]
        if (kf, 1) not in kernels:
            case.fail(f"no vertical (frequency) filter: use a Conv2d with kernel_size=({kf}, 1) "
                      f"(found kernels {kernels})")
        if (1, kt) not in kernels:
            case.fail(f"no horizontal (time) filter: use a Conv2d with kernel_size=(1, {kt}) "
                      f"(found kernels {kernels})")
        if any(k[0] > 1 and k[1] > 1 for k in kernels):
            case.fail(f"a square kernel is present {kernels}: the point is to factor a "
                      f"{kf}x{kt} patch into ({kf}, 1) then (1, {kt})")
        block.eval()
        x = torch.randn(2, in_ch, *shape)
        with torch.no_grad():
            out = case.call(block, x)
        if isinstance(out, torch.Tensor) and out.ndim == 4 and out.shape[1] != out_ch \
                and tuple(out.shape[2:]) == shape:
            case.fail(f"{out.shape[1]} output channels, expected out_ch = {out_ch}: if two branches were "
                      "concatenated, apply the two convolutions one after the other instead (the second "
                      "takes out_ch channels in and gives out_ch out)")
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, out_ch, *shape):
            got_shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            case.fail(f"output shape {got_shape}, expected {(2, out_ch, *shape)}: pad "
                      f"({kf // 2}, 0) for the vertical and (0, {kt // 2}) for the horizontal conv")
        calls = record_calls(block, x)[1]
        kinds = [type(module) for module, _, _ in calls]
        conv_calls = [(module, inp) for module, inp, _ in calls if isinstance(module, nn.Conv2d)]
        if [m.kernel_size for m, _ in conv_calls][:2] == [(1, kt), (kf, 1)] and kf != 1 and kt != 1:
            case.fail(f"the time filter (1, {kt}) runs first: the exercise's order is {wanted}")
        if nn.BatchNorm2d not in kinds:
            case.fail(f"no batch norm: the exercise's block is {wanted}")
        if nn.ReLU in kinds and kinds.index(nn.ReLU) < kinds.index(nn.BatchNorm2d):
            case.fail(f"a ReLU runs before its batch norm: the exercise's order is {wanted}")
        if len(conv_calls) >= 2 and bool((conv_calls[1][1] < 0).any()):
            case.fail("the second convolution receives negative inputs: without BatchNorm2d -> ReLU "
                      f"between them, the ({kf}, 1) and (1, {kt}) convolutions compose into a single "
                      f"linear {kf}x{kt} filter (of rank 1 per channel pair). The exercise's order is {wanted}")
        if bool((out < 0).any()):
            case.fail(f"negative outputs: the block ends with BatchNorm2d -> ReLU ({wanted})")
        # The pair must see a kf x kt patch: the gradient of one output (middle of the map) with
        # respect to the input, over a batch of random inputs (eval mode: items are independent;
        # one input alone could leave ReLUs dead), marks the region it depends on.
        fc, tc = shape[0] // 2, shape[1] // 2
        gen = torch.Generator().manual_seed(0)
        probe = (3 * torch.randn(16, in_ch, *shape, generator=gen)).requires_grad_(True)
        block(probe)[:, :, fc, tc].sum().backward()
        seen = probe.grad.abs().sum(dim=(0, 1)) > 0
        region = seen.nonzero()
        height = int(region[:, 0].max() - region[:, 0].min() + 1) if len(region) else 0
        width = int(region[:, 1].max() - region[:, 1].min() + 1) if len(region) else 0
        if (height, width) != (min(kf, shape[0]), min(kt, shape[1])):
            case.fail(f"one output sees a {height}x{width} patch of the input, expected "
                      f"{kf}x{kt}: apply the two convolutions one after the other")
        yield case


@exercise_check("07.2", "a frequency-position channel")
def _check_add_frequency_channel(candidate):
    import torch

    from course_lib.models import frequency_position

    for shape, dtype in [((2, 1, 5, 3), torch.float32), ((1, 4, 64, 10), torch.float32),
                         ((3, 2, 2, 1), torch.float32), ((2, 3, 7, 4), torch.float64)]:
        b, c, f, t = shape
        dtype_name = str(dtype).replace("torch.", "")
        case = Case(f"a {dtype_name} batch of shape {shape} (batch, channels, n_mels, frames)")
        x = torch.randn(*shape, dtype=dtype)
        got = case.call(candidate, x.clone())
        expected = torch.cat([x, frequency_position(x)], dim=1)
        if not isinstance(got, torch.Tensor):
            case.fail(f"return a tensor, got {type(got).__name__}")
        got_shape = tuple(got.shape)
        if got_shape == shape:
            case.fail(f"the result has the input's shape {shape}: append one channel (torch.cat along "
                      "dim=1) rather than overwrite one")
        if got_shape in ((b, c, f + 1, t), (b, c, f, t + 1)) and got_shape != (b, c + 1, f, t):
            case.fail(f"shape {got_shape}: the position is a new *channel*, so concatenate along dim=1 "
                      f"to get {(b, c + 1, f, t)}")
        if got_shape == (1, c + 1, f, t) and b > 1:
            case.fail(f"shape {got_shape}: the position channel must be repeated for every item of "
                      f"the batch (expand it to batch size {b}) before concatenating")
        if got_shape == (b, c + 1, f, t):
            pos = got[:, -1].to(torch.float64)
            ramp = torch.linspace(-1, 1, f, dtype=torch.float64)
            if t != f and torch.allclose(pos, torch.linspace(-1, 1, t, dtype=torch.float64).expand_as(pos)):
                case.fail("the new channel runs along time: it should vary along the mel axis "
                          "(dim 2) and be constant over frames")
            if f > 1 and torch.allclose(pos[0, :, 0], torch.linspace(0, 1, f, dtype=torch.float64)):
                case.fail("positions run from 0 to 1: use -1 (lowest band) to +1 (highest)")
            if f > 1 and torch.allclose(pos[0, :, 0], ramp.flip(0)):
                case.fail("the positions run backwards: band 0 (the lowest frequency) gets -1 and the "
                          "last band +1")
            if f > 1 and torch.allclose(pos[0, :, 0], -1 + 2 * torch.arange(f, dtype=torch.float64) / f):
                case.fail("the last band gets 1 - 2/n_mels instead of +1: space the positions with "
                          "torch.linspace(-1, 1, n_mels), which includes both ends")
            if f > 1 and matches(got[:, 0], expected[:, -1], atol=1e-6):
                case.fail("the position channel comes first: append it after the input channels")
        if isinstance(got, torch.Tensor) and got.dtype != x.dtype:
            case.fail(f"the result is {got.dtype} for a {x.dtype} input: build the position channel "
                      "with dtype=x.dtype (and device=x.device) so it matches x")
        compare_arrays(case, got, expected, atol=1e-6, name="input with frequency channel")
        yield case
