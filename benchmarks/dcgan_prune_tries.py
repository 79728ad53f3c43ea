"""Quick tries behind the structured-pruning rows of benchmarks/RESULTS.md ("Optimise and export"): dcgan-mnist's
generator with its projection (and optionally its transposed conv) pruned by channel, fine-tuned by output
matching in a plain loop (Adam, an EMA with the loop's warm-up), scored by FD-MNISTClassifier on 2,000 images
as `aigc optimize` scores it. Not the pipeline; its baseline (L1, both chains, 1,000 steps: 19.19) sits
beside the pipeline's 19.25.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dcgan_prune_tries.py --conv 0 --criterion bn --steps 1000 [--lr 1e-3 --cosine] [--feat 1]

--criterion l1 (filter norm), bn (BatchNorm scale) or act (mean activation x the next layer's weight norm);
--proj / --conv: the share of the projection's / transposed conv's channels to remove; --feat: the weight of
a mean squared difference on the transposed conv's activations (only when it keeps all its channels).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time

import torch
import torch.nn.functional as F

from aigc.loading import load
from aigc.optimize import prune
from aigc.optimize.report import Settings, quality


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proj", type=float, default=0.5)
    parser.add_argument("--conv", type=float, default=0.5)
    parser.add_argument("--criterion", default="l1", choices=("l1", "bn", "act"))
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--beta1", type=float, default=0.5)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--cosine", action="store_true")
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--feat", type=float, default=0.0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--samples", type=int, default=2000)
    a = parser.parse_args()
    torch.set_num_threads(1)
    started = time.process_time()
    teacher = load("dcgan-mnist").module.generator.network.eval()
    model = load("dcgan-mnist")
    g, noise_dim = model.module.generator.network, model.module.generator.noise_dim
    with torch.no_grad():
        project, bn0, conv1, bn1, conv2 = g.project[0], g.body[0], g.body[2], g.body[3], g.body[5]
        channels, area = g.base_channels, g.base**2
        z = torch.randn(1024, noise_dim, generator=torch.Generator().manual_seed(123))

        def activations(index: int) -> torch.Tensor:  # the output of body[index] on z
            x = g.project(z).view(-1, channels, g.base, g.base)
            for i, layer in enumerate(g.body):
                x = layer(x)
                if i == index:
                    return x
            raise IndexError(index)

        def pick(n: int, amount: float, scores: torch.Tensor) -> torch.Tensor:
            return scores.topk(max(1, round(n * (1 - amount)))).indices.sort().values

        if a.criterion == "l1":
            s0, s1 = project.weight.abs().view(channels, -1).sum(1), conv1.weight.abs().transpose(0, 1).flatten(1).sum(1)
        elif a.criterion == "bn":
            s0, s1 = bn0.weight.abs(), bn1.weight.abs()
        else:  # ConvTranspose2d weights are [in, out, k, k]: row c of the flattened weight reads channel c
            s0 = activations(1).abs().mean((0, 2, 3)) * conv1.weight.flatten(1).norm(dim=1)
            s1 = activations(4).abs().mean((0, 2, 3)) * conv2.weight.flatten(1).norm(dim=1)
        k0 = pick(channels, a.proj, s0) if a.proj > 0 else torch.arange(channels)
        k1 = pick(conv1.out_channels, a.conv, s1) if a.conv > 0 else torch.arange(conv1.out_channels)
        prune.resize_projection(project, k0, area)
        prune.resize(bn0, keep_out=k0)
        prune.resize(conv1, keep_in=k0)
        g.base_channels = len(k0)
        prune.resize(conv1, keep_out=k1)
        prune.resize(bn1, keep_out=k1)
        prune.resize(conv2, keep_in=k1)
    parameters = sum(p.numel() for p in g.parameters())
    print("parameters", parameters, "channels kept", len(k0), len(k1), flush=True)
    optimizer = torch.optim.Adam(g.parameters(), lr=a.lr, betas=(a.beta1, 0.999))
    ema = copy.deepcopy(g).eval()
    teacher_features = torch.nn.Sequential(*list(teacher.body)[:5])
    g.train()
    for step in range(a.steps):
        if a.cosine:
            for group in optimizer.param_groups:
                group["lr"] = a.lr * 0.5 * (1 + math.cos(math.pi * step / a.steps))
        z = torch.randn(a.batch, noise_dim)
        with torch.no_grad():
            features = teacher_features(teacher.project(z).view(-1, teacher.base_channels, teacher.base, teacher.base))
            target = teacher.body[5:](features)
        mine = g.body[:5](g.project(z).view(-1, g.base_channels, g.base, g.base))
        loss = F.mse_loss(g.body[5:](mine), target)
        if a.feat and mine.shape == features.shape:
            loss = loss + a.feat * F.mse_loss(mine, features)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            decay = min(a.ema, (1 + step) / (10 + step))  # the EMA callback's warm-up
            for average, current in zip(ema.parameters(), g.parameters()):
                average.lerp_(current, 1 - decay)
            for average, current in zip(ema.buffers(), g.buffers()):
                average.copy_(current)
        if step % 500 == 0:
            print(step, float(loss.detach()), flush=True)
    train_cpu = time.process_time() - started
    model.module.generator.network = ema.eval()
    model.module.eval()
    score = quality(model, Settings(quality_samples=a.samples))
    print(json.dumps({"args": vars(a), "params": parameters, "FD": score["value"], "train_cpu_s": round(train_cpu, 1),
                      "total_cpu_s": round(time.process_time() - started, 1)}))


if __name__ == "__main__":
    main()
