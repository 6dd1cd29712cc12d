"""Does the student's training step use the machine? Its achieved GFLOP/s (matmul and
convolution FLOPs of forward + backward, counted by torch's FlopCounterMode, over the
measured step time) against the peak fp32 matmul GFLOP/s of this machine measured in the
same run; then the variants that could waste compute, each as a throughput ratio to the
current default: memory layout, thread count, bfloat16 autocast, and how the 2x2 'same'
convolution pads.

All variants start from the same weights and are timed in turns with the default.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dermkd.bench.common import BENCHMARKS, BenchContext, Figure, interleave
from dermkd.bench.training import (CHANNELS_LAST, adamax, batch_size, datamodule, layout, run_config,
                                   student_factory, train_step)
from dermkd.models.classifier import Classifier
from dermkd.precision import autocast
from dermkd.train.trainer import torch_threads


class CropConv2d(nn.Conv2d):
    """2x2 conv with 1 px of zeros on every side, then the first row and column dropped:
    Keras 'same' (right/bottom) without a padded copy of the input, at the cost of one
    extra output row and column."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)[:, :, 1:, 1:]


PADDINGS: dict[str, Callable[[nn.Conv2d], nn.Conv2d]] = {
    "Conv2d(padding='same')": lambda c: nn.Conv2d(c.in_channels, c.out_channels, 2, padding="same"),
    "Conv2d(padding=1) + crop": lambda c: CropConv2d(c.in_channels, c.out_channels, 2, padding=1),
}


def with_padding(model: Classifier, make: Callable[[nn.Conv2d], nn.Conv2d]) -> Classifier:
    """A copy of the student whose (pad, 2x2 conv, ReLU) blocks use another padding, same weights."""
    model = copy.deepcopy(model)
    for block in model.net.features:
        if isinstance(block, nn.Sequential) and isinstance(block[1], nn.Conv2d):
            conv = make(block[1])
            conv.load_state_dict(block[1].state_dict())
            block[0], block[1] = nn.Identity(), conv
    return model


def same_outputs(a: nn.Module, b: nn.Module, x: torch.Tensor) -> str:
    with torch.no_grad():
        ya, yb = a.eval()(x), b.eval()(x)
    a.train(), b.train()
    return "identical outputs" if torch.equal(ya, yb) else f"outputs differ by up to {(ya - yb).abs().max():.2g}"


@BENCHMARKS.register("compute")
def compute(ctx: BenchContext) -> list[Figure]:
    cfg, bs = run_config(ctx), batch_size(ctx)
    x, y = next(iter(datamodule(ctx).train_dataloader()))
    base = student_factory(ctx)()
    models = {"default": base, "other layout": copy.deepcopy(base)}
    models.update({name: with_padding(base, make) for name, make in PADDINGS.items()})
    channels_last = {name: CHANNELS_LAST != (name == "other layout") for name in models}
    steps = {}
    for name, model in models.items():
        model.train().to(memory_format=torch.channels_last if channels_last[name] else torch.contiguous_format)
        optimizer = adamax(model, cfg)
        steps[name] = lambda m=model, o=optimizer, xi=layout(x, channels_last[name]): train_step(m, o, xi, y)

    def one_thread() -> None:
        with torch_threads(1):
            steps["default"]()

    def bf16_step() -> None:  # the default model's step under --precision bf16-mixed
        with autocast("bf16-mixed"):
            steps["default"]()

    n = 256 if ctx.smoke else 2048
    a, b, c = torch.rand(n, n), torch.rand(n, n), torch.empty(n, n)
    a16, b16, c16 = a.bfloat16(), b.bfloat16(), c.bfloat16()
    with torch_threads(ctx.threads), warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*padding='same' with even kernel.*")
        notes = {name: same_outputs(base, models[name], layout(x)) for name in PADDINGS}
        with FlopCounterMode(display=False) as counter:
            steps["default"]()
        seconds = interleave({**steps, "1 thread": one_thread, "bf16": bf16_step,
                              "mm": lambda: torch.mm(a, b, out=c), "mm bf16": lambda: torch.mm(a16, b16, out=c16)},
                             reps=ctx.steps(5, 1))
    flops = counter.get_total_flops()
    achieved, peak = flops / seconds["default"] / 1e9, 2 * n**3 / seconds["mm"] / 1e9
    peak_bf16 = 2 * n**3 / seconds["mm bf16"] / 1e9
    layouts = {True: "channels_last", False: "contiguous"}
    where = f"{ctx.image_size} px, batch {bs}, {ctx.threads} thread(s)"

    def versus(name: str, key: str, default: str, note: str = "") -> Figure:
        ratio = seconds["default"] / seconds[key]
        return Figure("compute", f"{name} / {default} (default), train img/s", ratio, "x",
                      f"{bs / seconds[key]:.1f} vs {bs / seconds['default']:.1f} img/s", note=note or where)

    return [
        Figure("compute", "student training step GFLOP/s / peak fp32 matmul GFLOP/s", achieved / peak, "x",
               f"step {achieved:.1f} GFLOP/s ({flops / 1e9:.1f} GFLOP forward+backward per batch), "
               f"torch.mm {n}x{n} fp32 {peak:.1f} GFLOP/s", note=where),
        versus(layouts[not CHANNELS_LAST], "other layout", layouts[CHANNELS_LAST]),
        versus("1 thread", "1 thread", f"{ctx.threads} thread(s)"),
        versus("bf16-mixed autocast", "bf16", "fp32",
               f"{where}; --precision bf16-mixed; weights, optimizer and loss stay fp32"),
        Figure("compute", "peak bf16 matmul GFLOP/s / peak fp32 matmul GFLOP/s", peak_bf16 / peak, "x",
               f"torch.mm {n}x{n} bf16 {peak_bf16:.1f} vs fp32 {peak:.1f} GFLOP/s",
               note="what the CPU offers bfloat16 (AMX / AVX512-BF16 where present)"),
        *(versus(name, name, "ZeroPad2d((0,1,0,1)) + Conv2d", f"{where}; {notes[name]} for the same weights")
          for name in PADDINGS),
    ]
