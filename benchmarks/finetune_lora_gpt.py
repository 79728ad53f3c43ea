"""Fine-tuning the zoo GPT on a new domain: full fine-tuning vs LoRA vs training from scratch, same steps.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/finetune_lora_gpt.py --steps 200

The parent is the zoo's `gpt-shakespeare` (4 layers, width 128, byte-level BPE of 2,048 tokens). The new
domain is legal English it never saw: the licence texts every Debian/Ubuntu system ships in
/usr/share/common-licenses (GPL, LGPL, Apache, Artistic, MPL, ...; each file once, symlinks skipped;
--corpus for another folder); the last 10% of the characters (the end of MPL-2.0) are held out. Each arm trains `--steps` steps of 16 x 128 tokens through `aigc train` (the real loop):

    scratch   the same architecture from random weights (its own BPE, trained on the new text)
    full      train.init_from = "gpt-shakespeare", every weight trains
    lora-R    train.init_from = "gpt-shakespeare" and train.lora = {rank = R, targets = every Linear of the
              blocks}: only the adapters train (base frozen); checkpoints hold adapter.safetensors apart

and `zero-shot` scores the parent itself. The score is the exact validation loss over the whole held-out
text in nats per *character* (tokenizers differ between scratch and the rest, characters do not), with
`aigc.models.text.common.evaluate_split` on the merged weights that `aigc.load` returns.
Prints one JSON object per arm.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

import aigc
from aigc.data import load_dataset
from aigc.models.text.common import evaluate_split
from machine import cpu_name  # benchmarks run as scripts: this folder is on sys.path

QUIET = ["train.eval_every=0", "train.sample_every=0", "train.checkpoint_every=0", "train.progress=false",
         "train.tensorboard=false", "train.log_every=100", "train.max_minutes=60"]
TARGETS = '["*attention.qkv", "*attention.proj", "*mlp.fc", "*mlp.proj"]'


def arms(steps: int, ranks: list[int], full_lr: float, lora_lr: float) -> dict[str, list[str]]:
    schedule = [f"train.max_steps={steps}", "train.warmup_steps=20", 'train.lr_schedule="cosine"']
    found = {
        "scratch": schedule,
        "full": schedule + ["train.init_from='gpt-shakespeare'", f"optim.lr={full_lr}"],
    }
    for rank in ranks:
        found[f"lora-{rank}"] = schedule + ["train.init_from='gpt-shakespeare'", f"optim.lr={lora_lr}",
                                            f"train.lora={{rank={rank}, alpha={2 * rank}, targets={TARGETS}}}"]
    return found


def score(path: str | Path, data_overrides: dict) -> dict[str, float]:
    model = aigc.load(path, safety=False)
    config = model.info.config
    data_config = config.data.model_copy(update=data_overrides)
    data = load_dataset(data_config, config.model)
    return evaluate_split(model.module, data.val)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--corpus", default="/usr/share/common-licenses")
    parser.add_argument("--ranks", default="4,16")
    parser.add_argument("--full-lr", type=float, default=1e-3)
    parser.add_argument("--lora-lr", type=float, default=3e-3)
    parser.add_argument("--only", default="", help="comma-separated arms to run (default: all)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="aigc-bench-lora-"))
    corpus = out / "corpus"  # each licence once: the system folder links GPL -> GPL-3 and so on
    corpus.mkdir(parents=True, exist_ok=True)
    for path in sorted(Path(args.corpus).iterdir()):
        if path.is_file() and not path.is_symlink():
            (corpus / path.name).write_bytes(path.read_bytes())
    data = {"name": "text", "path": str(corpus), "val_fraction": 0.1}
    data_sets = [f"data.name={json.dumps(data['name'])}", f"data.path={json.dumps(data['path'])}", f"data.val_fraction={data['val_fraction']}"]
    machine = f"{cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, torch {torch.__version__}"

    zero = score("gpt-shakespeare", {"name": data["name"], "path": data["path"], "val_fraction": data["val_fraction"], "limit": None})
    print(json.dumps({"arm": "zero-shot", "val_nats_per_char": round(zero["nats_per_char"], 4), "val_characters": zero["characters"], "machine": machine}), flush=True)
    wanted = set(filter(None, args.only.split(",")))
    for name, overrides in arms(args.steps, [int(r) for r in args.ranks.split(",")], args.full_lr, args.lora_lr).items():
        if wanted and name not in wanted:
            continue
        started = time.perf_counter()
        result = aigc.train("gpt-shakespeare", overrides=[*data_sets, *QUIET, *overrides], out=out / name)
        seconds = time.perf_counter() - started
        sidecar = json.loads((result.checkpoint / "checkpoint.json").read_text())
        total = sum(t.numel() for t in aigc.load(result.run_dir, safety=False).module.parameters())
        trained = sidecar.get("lora", {}).get("trainable_parameters", total)
        scores = score(result.run_dir, {})
        files = {f: (result.checkpoint / f).stat().st_size for f in sidecar["files"] if f != "state.safetensors"}
        print(json.dumps({
            "arm": name, "steps": result.step, "train_seconds": round(seconds, 1),
            "trained_parameters": trained, "parameters": total, "trained_share": round(trained / total, 4),
            "train_loss_per_token": round(result.metrics.get("loss/model", float("nan")), 4),
            "val_nats_per_char": round(scores["nats_per_char"], 4), "val_characters": scores["characters"],
            "file_bytes": files, "machine": machine,
        }), flush=True)


if __name__ == "__main__":
    main()
