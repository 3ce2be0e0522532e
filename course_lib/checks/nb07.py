"""Checks for 07_time_frequency_cnns: a time-frequency separable block, a frequency channel.

Notebook: 07_time_frequency_cnns
"""

from __future__ import annotations

from course_lib.checks import Case, compare_arrays, exercise_check

__all__: list[str] = []


@exercise_check("07.1", "a time-frequency separable block")
def _check_separable_block(candidate):
    import torch
    from torch import nn

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
        if tuple(out.shape) != (2, out_ch, *shape):
            case.fail(f"output shape {tuple(out.shape)}, expected {(2, out_ch, *shape)}: pad "
                      f"({kf // 2}, 0) for the vertical and (0, {kt // 2}) for the horizontal conv")
        # The pair must see a kf x kt patch: probe with an impulse in the middle (gradients).
        # Random inputs (a zero input leaves ReLUs dead), union of the regions seen.
        fc, tc = shape[0] // 2, shape[1] // 2
        seen = torch.zeros(shape, dtype=torch.bool)
        gen = torch.Generator().manual_seed(0)
        for _ in range(16):
            probe = (3 * torch.randn(1, in_ch, *shape, generator=gen)).requires_grad_(True)
            block(probe)[0, :, fc, tc].sum().backward()
            seen |= probe.grad[0].abs().sum(0) > 0
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

    for shape in [(2, 1, 5, 3), (1, 4, 64, 10), (3, 2, 2, 1)]:
        case = Case(f"a batch of shape {shape} (batch, channels, n_mels, frames)")
        x = torch.randn(*shape)
        got = case.call(candidate, x.clone())
        expected = torch.cat([x, frequency_position(x)], dim=1)
        if not isinstance(got, torch.Tensor):
            case.fail(f"return a tensor, got {type(got).__name__}")
        if tuple(got.shape) == (shape[0], shape[1] + 1, shape[2], shape[3]):
            pos = got[:, -1]
            if torch.allclose(pos, torch.linspace(-1, 1, shape[3]).expand_as(pos)) \
                    and shape[2] != shape[3]:
                case.fail("the new channel runs along time: it should vary along the mel axis "
                          "(dim 2) and be constant over frames")
            if torch.allclose(pos[0, :, 0], torch.linspace(0, 1, shape[2])) and shape[2] > 1:
                case.fail("positions run from 0 to 1: use -1 (lowest band) to +1 (highest)")
            if torch.allclose(got[:, 0], expected[:, -1]) and shape[1] > 0 and shape[2] > 1:
                case.fail("the position channel comes first: append it after the input channels")
        compare_arrays(case, got, expected, atol=1e-6, name="input with frequency channel")
        yield case
