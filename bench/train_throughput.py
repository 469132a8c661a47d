"""Benchmark: Trainer images/s against a plain PyTorch loop (same model, data, batch, recipe), and the metrics share.

The plain loop is what one writes without the Trainer: float32 NCHW images normalised once on the CPU, a
``TensorDataset`` read by ``DataLoader(shuffle=True)``, the same optimizer, schedule, gradient clipping and loss,
no channels_last. The two run alternately (A B A B ...) on equal image counts in one process, after one untimed
warm-up each, with the same number of torch threads; the target is judged on the median of the per-round A/B
ratios, which a burst of load from another process on the shared machine moves less than the totals. Then one
``nas.evaluate.evaluate`` at the quick fidelity gives the share of a trial's wall time spent on the metrics
(accuracy + interference suite).

Then bf16 against fp32, in the same process: the Trainer's own training images/s (forward + loss under bf16
autocast vs plain fp32; parameters and optimizer fp32 in both) for the same two 1.5M nets at batch 64, the two
precisions alternating in many short rounds, and the share of the machine's matrix-product peak each reaches: the
peaks are measured here too (a large fp32 and a large bf16 ``torch.mm``, best of 7, before and after training),
and training does about 3 x 2 x MACs FLOPs per image (forward, and a backward twice as costly), MACs from
``nas.complexity.count_macs``. Like the peaks, training is reported by its best round (load from other processes
on a shared machine only ever lowers a round), beside the median of the per-round bf16/fp32 ratios.
``--precision-only`` runs just this part.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nas.complexity import count_macs
from nas.data import DatasetSplits, balanced_indices, load_dataset
from nas.errors import DataError
from nas.evaluate import evaluate
from nas.fidelity import Fidelity, get_fidelity
from nas.models import build_model
from nas.sampling import Shape, fit
from nas.space import Architecture, Budget, Space
from nas.train import Trainer, cpu_native_bf16, make_optimizer, make_scheduler, resolve_precision

RATIO_TARGET = 1.3  # Trainer images/s >= 1.3 x the plain loop's
METRICS_SHARE_TARGET = 0.05  # metrics_s / wall_s <= 5 % at the quick fidelity
SPACE_FILE = Path(__file__).resolve().parents[1] / "search_spaces" / "bottleneck.yaml"
BUDGET = Budget(params=1_500_000, tolerance=0.05, divisor=8)
DEPTHS = {"s0.depth": 2, "s1.depth": 2, "s2.depth": 2, "s3.depth": 2}
PRECISION_BATCH = 64  # the bf16 vs fp32 comparison's batch
PRECISIONS = ("fp32", "bf16")
MATMUL_SIZE = 2048  # n of the n x n x n matrix products that measure the peaks (512 with --quick-check)
COMMON = {"net.expansion": 4, "net.activation": "relu", "net.depthwise": True, "net.kernel": 3, "net.norm": "batch"}


@dataclass
class Side:
    """Timings of one contender over the rounds."""

    images: int = 0
    seconds: float = 0.0
    rounds: list[float] = dataclasses.field(default_factory=list)  # images/s per round

    def add(self, images: int, seconds: float) -> None:
        self.images += images
        self.seconds += seconds
        self.rounds.append(images / seconds)

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds


def pick_architecture(space: Space, block: str, shape: Shape) -> tuple[Architecture, int]:
    """The default space's ``block`` network (depth 2 per stage, e4, k3, relu, dw, BN) fitted to 1.5M params."""
    choices = {"net.block": block, **COMMON, **DEPTHS}
    arch = space.build(lambda key, values: choices[key] if key in choices else values[0])
    solved = fit(arch, BUDGET, shape)
    return solved.arch, solved.params


def load_data(data_dir: str | None) -> tuple[DatasetSplits, str]:
    """Fashion-MNIST, or a synthetic 1x28x28, 10-class stand-in when it is not installed."""
    try:
        return load_dataset("fashion-mnist", data_dir=data_dir), "fashion-mnist"
    except DataError as exc:
        print(f"note: Fashion-MNIST unavailable ({str(exc).split('.')[0]}); using synthetic 1x28x28 data instead")
        data = load_dataset("synthetic", resolution=28, channels=1, num_classes=10, train_size=4000, test_size=500)
        return data, "synthetic (Fashion-MNIST absent)"


def trainer_round(model: nn.Module, data: DatasetSplits, fidelity: Fidelity, threads: int, seed: int) -> float:
    """Seconds of one ``Trainer.fit`` (whole call, setup included) over ``fidelity.train_images`` images."""
    trainer = Trainer(device="cpu", threads=threads, progress=False)
    start = time.perf_counter()
    trainer.fit(model, data, fidelity, seed=seed)
    return time.perf_counter() - start


class PlainLoop:
    """The baseline: float32 NCHW TensorDataset + DataLoader(shuffle=True), same optimizer/schedule/clip/loss."""

    def __init__(self, model: nn.Module, data: DatasetSplits, fidelity: Fidelity, seed: int) -> None:
        n = fidelity.train_images or int(data.train_y.numel())
        picked = balanced_indices(data.train_y, n, seed)  # the very images the Trainer picks
        x = data.normalize(data.train_x[picked]).contiguous()  # float32 NCHW, normalised once
        self.loader = DataLoader(
            TensorDataset(x, data.train_y[picked]),
            batch_size=fidelity.batch_size,
            shuffle=True,
            drop_last=True,  # as the Trainer (the ragged last batch is dropped)
            generator=torch.Generator().manual_seed(seed),
        )
        self.model = model
        self.fidelity = fidelity
        steps = len(self.loader)
        self.optimizer = make_optimizer(model, fidelity)
        self.scheduler = make_scheduler(
            self.optimizer, warmup_steps=round(fidelity.warmup_epochs * steps), total_steps=steps * fidelity.epochs
        )

    def run(self) -> tuple[int, float]:
        """One pass over the images: (images trained, seconds)."""
        f, model = self.fidelity, self.model
        model.train()
        images, total_loss = 0, 0.0
        start = time.perf_counter()
        for xb, yb in self.loader:
            loss = F.cross_entropy(model(xb), yb, label_smoothing=f.label_smoothing)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if f.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), f.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            total_loss += loss.item()
            images += len(yb)
        return images, time.perf_counter() - start


def compare(
    arch: Architecture, data: DatasetSplits, base: Fidelity, *, images: int, rounds: int, threads: int, seed: int
) -> tuple[Side, Side, float]:
    """Alternate Trainer and plain loop ``rounds`` times on ``images`` images each; also the Trainer's own figure."""
    torch.manual_seed(seed)
    model_a = build_model(arch, in_channels=data.in_channels, num_classes=data.num_classes, resolution=data.resolution)
    model_b = copy.deepcopy(model_a)  # before the Trainer turns model_a channels_last
    fid = dataclasses.replace(base, train_images=images, epochs=1)
    warm = dataclasses.replace(fid, train_images=min(images, 2 * fid.batch_size))
    plain = PlainLoop(model_b, data, fid, seed)
    trainer_round(model_a, data, warm, threads, seed)  # untimed warm-ups (allocator, oneDNN primitives)
    PlainLoop(copy.deepcopy(model_b), data, warm, seed).run()
    a, b = Side(), Side()
    internal: list[float] = []
    trainer = Trainer(device="cpu", threads=threads, progress=False)
    for r in range(rounds):
        start = time.perf_counter()
        result = trainer.fit(model_a, data, fid, seed=seed + r)
        a.add(result.images_seen, time.perf_counter() - start)
        internal.append(result.images_per_s)
        b.add(*plain.run())
    return a, b, statistics.median(internal)


def matmul_peak(dtype: torch.dtype, n: int, repeats: int = 7) -> float:
    """GFLOP/s of the best of ``repeats`` timed ``n x n @ n x n`` products in ``dtype`` (after one untimed one)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(dtype)
    b = torch.randn(n, n, generator=gen).to(dtype)
    out = torch.mm(a, b)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


@dataclass
class PrecisionRow:
    """bf16 against fp32 training for one net."""

    family: str
    params: int
    macs: int  # per image
    sides: dict[str, Side]

    def best(self, precision: str) -> float:
        """The best round's images/s (like the peaks, a best-of figure: load from other processes only lowers it)."""
        return max(self.sides[precision].rounds)

    def median(self, precision: str) -> float:
        return statistics.median(self.sides[precision].rounds)

    def paired(self) -> float:
        """Median of the per-round bf16/fp32 ratios (each round runs both, back to back)."""
        return statistics.median(b / f for b, f in zip(self.sides["bf16"].rounds, self.sides["fp32"].rounds,
                                                        strict=True))

    def gflops(self, precision: str) -> float:
        """Training GFLOP/s of the best round: images/s x 3 x 2 x MACs."""
        return self.best(precision) * 6 * self.macs / 1e9


def precision_compare(
    arch: Architecture, data: DatasetSplits, base: Fidelity, *, images: int, rounds: int, threads: int, seed: int
) -> dict[str, Side]:
    """The Trainer's own training images/s at fp32 and bf16 (same init), alternating sides every round."""
    torch.manual_seed(seed)
    model = build_model(arch, in_channels=data.in_channels, num_classes=data.num_classes, resolution=data.resolution)
    models = {p: copy.deepcopy(model) for p in PRECISIONS}
    fids = {
        p: dataclasses.replace(base, train_images=images, epochs=1, batch_size=PRECISION_BATCH, precision=p)
        for p in PRECISIONS
    }
    trainer = Trainer(device="cpu", threads=threads, progress=False)
    for p in PRECISIONS:  # untimed warm-ups: oneDNN creates its fp32 and bf16 primitives once
        trainer.fit(models[p], data, dataclasses.replace(fids[p], train_images=2 * PRECISION_BATCH), seed=seed)
    sides = {p: Side() for p in PRECISIONS}
    for r in range(rounds):
        for p in PRECISIONS if r % 2 == 0 else PRECISIONS[::-1]:  # ABBA: a drift in load favours neither side
            result = trainer.fit(models[p], data, fids[p], seed=seed + r)
            assert result.precision == p
            sides[p].add(result.images_seen, result.images_seen / result.images_per_s)
    return sides


def precision_section(
    archs: list[tuple[Architecture, int]], data: DatasetSplits, base: Fidelity, *, images: int, rounds: int,
    threads: int, seed: int, matmul_n: int,
) -> list[str]:
    """Measure the peaks and bf16 vs fp32 training for each net; print the table, return the summary lines."""
    auto = resolve_precision("auto", torch.device("cpu"))
    print(f"\nbf16 vs fp32 training: batch {PRECISION_BATCH}, {threads} threads, {rounds} round(s) x {images} images "
          f"per precision (Trainer's own images/s, precisions alternating); 'auto' resolves to {auto} on this CPU "
          f"(native bf16: {cpu_native_bf16()})")
    peaks = {"fp32": matmul_peak(torch.float32, matmul_n), "bf16": matmul_peak(torch.bfloat16, matmul_n)}
    rows: list[PrecisionRow] = []
    for arch, params in archs:
        model = build_model(arch, in_channels=data.in_channels, num_classes=data.num_classes,
                            resolution=data.resolution)
        macs = count_macs(model, torch.zeros(1, data.in_channels, data.resolution, data.resolution))[0]
        sides = precision_compare(arch, data, base, images=images, rounds=rounds, threads=threads, seed=seed)
        rows.append(PrecisionRow(arch.stages[0].block, params, macs, sides))
    peaks = {  # measured again after training; the better of the two (a burst of load only ever lowers a peak)
        "fp32": max(peaks["fp32"], matmul_peak(torch.float32, matmul_n)),
        "bf16": max(peaks["bf16"], matmul_peak(torch.bfloat16, matmul_n)),
    }
    peak_line = (f"matrix-product peaks ({matmul_n}^3 torch.mm, best of 2 x 7): fp32 {peaks['fp32']:.0f} GFLOP/s, "
                 f"bf16 {peaks['bf16']:.0f} GFLOP/s (bf16/fp32 {peaks['bf16'] / peaks['fp32']:.2f}x)")
    print("  " + peak_line)
    print("  training: best round's images/s (median in brackets); GFLOP/s = best images/s x 3 x 2 x MACs")

    header = (f"  {'net':9s} {'params':>9s} {'MMACs/img':>9s} | {'fp32 img/s':>15s} {'bf16 img/s':>15s} "
              f"{'bf16/fp32':>9s} {'paired':>6s} | {'fp32 GFLOP/s':>12s} {'of peak':>7s} | {'bf16 GFLOP/s':>12s} "
              f"{'of peak':>7s}")
    print(header)
    print("  " + "-" * (len(header) - 2))
    lines = [peak_line]
    for row in rows:
        share = {p: row.gflops(p) / peaks[p] for p in PRECISIONS}
        ratio = row.best("bf16") / row.best("fp32")
        shown = {p: f"{row.best(p):.1f} ({row.median(p):.1f})" for p in PRECISIONS}
        print(f"  {row.family:9s} {row.params:>9,} {row.macs / 1e6:>9.1f} | {shown['fp32']:>15s} "
              f"{shown['bf16']:>15s} {ratio:>8.2f}x {row.paired():>5.2f}x | {row.gflops('fp32'):>12.1f} "
              f"{share['fp32']:>7.1%} | {row.gflops('bf16'):>12.1f} {share['bf16']:>7.1%}")
        lines.append(f"{row.family:9s} {row.params:>9,} params: bf16 {row.best('bf16'):6.1f} img/s vs fp32 "
                     f"{row.best('fp32'):6.1f} (best rounds), bf16/fp32 {ratio:.2f}x (median of per-round ratios "
                     f"{row.paired():.2f}x); share of peak: fp32 {share['fp32']:.1%}, bf16 {share['bf16']:.1%}")
    print("  per-round bf16/fp32: " + "; ".join(
        f"{row.family} " + ", ".join(f"{b / f:.2f}" for b, f in zip(row.sides["bf16"].rounds,
                                                                      row.sides["fp32"].rounds, strict=True))
        for row in rows))
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a summary; exit 1 when a target is missed (never with --quick-check)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for both loops (default 2)")
    parser.add_argument("--rounds", type=int, help="A/B rounds per architecture (default 5; 1 with --quick-check)")
    parser.add_argument("--images", type=int, help="images per round and side (default 384; 128 with --quick-check)")
    parser.add_argument("--train-images", type=int,
                        help="training images for the metrics-share run (default: quick's; 128 with --quick-check)",
                        )
    parser.add_argument("--data-dir", help="Fashion-MNIST folder (default: the Debian package's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick-check", action="store_true", help="few images, one round: a CI smoke run")
    parser.add_argument("--precision-rounds", type=int,
                        help="bf16/fp32 rounds per net (default 12; 2 with --quick-check)")
    parser.add_argument("--precision-images", type=int,
                        help="images per bf16/fp32 round (default 128, two batches; 64 with --quick-check)")
    parser.add_argument("--precision-only", action="store_true",
                        help="only the bf16 vs fp32 comparison (skip Trainer vs plain loop and the metrics share)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick_check else 5)
    images = args.images or (128 if args.quick_check else 384)
    if args.threads < 1 or rounds < 1 or images < 1:
        parser.error("--threads, --rounds and --images must be positive")

    torch.set_num_threads(args.threads)
    quick = get_fidelity("quick")
    data, data_label = load_data(args.data_dir)
    shape = Shape(data.in_channels, data.resolution, data.num_classes)
    space = Space.from_file(str(SPACE_FILE))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads (both loops); data {data_label}, "
          f"{data.in_channels}x{data.resolution}x{data.resolution}, {data.num_classes} classes")
    print(f"recipe (quick): batch {quick.batch_size}, {quick.optimizer} lr {quick.lr:g} wd {quick.weight_decay:g}, "
          f"warm-up {quick.warmup_epochs:g} epoch, grad clip {quick.grad_clip}, label smoothing "
          f"{quick.label_smoothing:g}; {rounds} round(s) x {images} images per side, A = Trainer, B = plain loop")

    lines: list[str] = []
    ratios_ok = share_ok = True
    share_line = ""
    archs = [pick_architecture(space, block, shape) for block in ("inverted", "basic")]
    for arch, params in [] if args.precision_only else archs:
        a, b, internal = compare(arch, data, quick, images=images, rounds=rounds, threads=args.threads, seed=args.seed)
        ratio = a.images_per_s / b.images_per_s
        paired = statistics.median(x / y for x, y in zip(a.rounds, b.rounds, strict=True))
        family = arch.stages[0].block
        print(f"\n{family}: {arch.to_string()} ({params:,} params)")
        print(f"  A Trainer   : {a.images_per_s:7.1f} img/s over {a.images:,} images (per round: "
              f"{', '.join(f'{v:.1f}' for v in a.rounds)}; whole fit() calls; its own epoch-loop figure, "
              f"median {internal:.1f})")
        print(f"  B plain loop: {b.images_per_s:7.1f} img/s over {b.images:,} images (per round: "
              f"{', '.join(f'{v:.1f}' for v in b.rounds)})")
        met = paired >= RATIO_TARGET
        ratios_ok &= met
        print(f"  ratio A/B: median of per-round ratios {paired:.2f}x (judged; robust to bursts of load from other "
              f"users), of totals {ratio:.2f}x; target >= {RATIO_TARGET}x: {'met' if met else 'MISSED'}")
        lines.append(f"{family:9s} {params:>9,} params: Trainer {a.images_per_s:7.1f} img/s, plain "
                     f"{b.images_per_s:7.1f} img/s, ratio {paired:.2f}x per-round median, {ratio:.2f}x of "
                     f"totals (target >= {RATIO_TARGET}x: {'met' if met else 'MISSED'})")

    if not args.precision_only:
        share_line, share_ok = metrics_share(archs[0], data, quick, args)
    precision_lines = precision_section(
        archs, data, quick, images=args.precision_images or (64 if args.quick_check else 2 * PRECISION_BATCH),
        rounds=args.precision_rounds or (2 if args.quick_check else 12), threads=args.threads, seed=args.seed,
        matmul_n=512 if args.quick_check else MATMUL_SIZE,
    )

    print("\n== summary " + "=" * 60)
    print(f"threads {args.threads}, data {data_label}, batch {quick.batch_size}, {rounds} round(s) x {images} images"
          + (" [--quick-check: smoke run, numbers are rough]" if args.quick_check else ""))
    for line in lines:
        print(line)
    if share_line:
        print(share_line)
    for line in precision_lines:
        print(line)
    if args.quick_check:
        return 0
    return 0 if ratios_ok and share_ok else 1


def metrics_share(
    picked: tuple[Architecture, int], data: DatasetSplits, quick: Fidelity, args: argparse.Namespace
) -> tuple[str, bool]:
    """One ``evaluate`` at the quick fidelity: the share of its wall time spent on metrics, and whether it is met."""
    train_images = args.train_images or (128 if args.quick_check else None)
    fid = quick if train_images is None else dataclasses.replace(
        quick, name=f"quick+train_images={train_images}", train_images=train_images
    )
    if args.quick_check:  # smoke only: one epoch, a small probe and validation set
        fid = dataclasses.replace(fid, name=f"{fid.name},smoke", epochs=1, probe_images=100, val_images=200)
    arch, params = picked
    print(f"\nmetrics share: evaluate({arch.stages[0].block}, {params:,} params) at {fid.describe()}; "
          f"{fid.probe_images} probe + {fid.val_images} validation images")
    m = evaluate(arch, data, fid, seed=args.seed, threads=args.threads).metrics
    share = m["metrics_s"] / m["wall_s"]
    at_quick = fid is quick
    share_ok = share <= METRICS_SHARE_TARGET or not at_quick
    verdict = ("met" if share <= METRICS_SHARE_TARGET else "MISSED") if at_quick else "n/a: not the quick fidelity"
    print(f"  wall {m['wall_s']:.1f} s = train {m['train_s']:.1f} s + metrics {m['metrics_s']:.2f} s + build/MACs "
          f"{m['wall_s'] - m['train_s'] - m['metrics_s']:.1f} s; accuracy {m['accuracy']:.3f}, "
          f"polysemanticity {m['polysemanticity']:.3f}")
    share_line = (f"metrics share {share:.1%} of trial wall time at {fid.name} (target <= "
                  f"{METRICS_SHARE_TARGET:.0%} at quick: {verdict})")
    print("  " + share_line)
    return share_line, share_ok


if __name__ == "__main__":
    sys.exit(main())
