"""`aigc stylize CONTENT --style S` and `aigc translate RUN IMAGE` — style transfer through the one generation path.

    aigc stylize photo.jpg --style painting.jpg --out out.png                 # Gatys: any style, no training
    aigc stylize photo.jpg --style a.jpg --style b.jpg --style-weight 3 --style-weight 1 --method adain --model RUN
    aigc stylize photo.jpg --model runs/fast-mosaic --out out.png            # a trained fast (Johnson) network
    aigc translate runs/cyclegan-digits digit.png --out printed.png

The PNG carries where it came from (method, content and style hashes, settings, and the checkpoint of a
trained network) like every PNG this toolkit writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from aigc.cli.generate import _checked_target, _params, _progress_bar
from aigc.errors import AigcError

console = Console()
errors = Console(stderr=True)
METHODS = ("gatys", "fast", "adain")


def stylize_command(
    content: Path = typer.Argument(..., help="The content image (PNG, JPEG, WebP, ...)."),
    style: list[str] = typer.Option([], "--style", help="A style image; repeat to blend several (Gatys, AdaIN)."),
    style_weight: list[float] = typer.Option([], "--style-weight", help="Weight of each --style, in order (default: equal)."),
    method: Optional[str] = typer.Option(None, "--method", help="gatys (optimise the image; default without --model), fast or adain (trained networks: --model)."),
    model: Optional[str] = typer.Option(None, "--model", help="A trained fast or adain run folder, or a zoo name (`aigc models list`)."),
    alpha: float = typer.Option(1.0, "--alpha", help="0 = the content unchanged .. 1 = fully stylised."),
    size: int = typer.Option(512, "--size", help="Long side of the output in pixels, 64..2048."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Gatys: optimiser iterations (default 200)."),
    seed: int = typer.Option(0, "--seed", help="Seeds what starts from noise (Gatys --param init=\"noise\"); the same seed gives the same file."),
    preserve_color: bool = typer.Option(False, "--preserve-color", help="Keep the content's colours; only the luminance is stylised."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output PNG (default ./stylized/CONTENT-METHOD.png)."),
    force: bool = typer.Option(False, "--force", help="Replace the output if it exists."),
    param: list[str] = typer.Option([], "--param", help="Any other request field: --param key=value, e.g. style_weight=50, scales=2, optimizer=\"adam\"."),
) -> None:
    """Paint CONTENT in the style of --style images: Gatys (any style, slow), AdaIN (any style, one pass, a trained
    decoder) or a fast network trained for one style."""
    from aigc.generation import pipeline
    from aigc.safety import default_policy

    method = _method(method, model)
    loaded = None
    if model is not None:
        from aigc.loading import load

        loaded = load(model)
        if method == "from the model":
            method = loaded.info.family
    target = _checked_target(out or Path("stylized") / f"{content.stem}-{method}.png", force)
    given = {"content": str(content), "alpha": alpha, "size": size, "seed": seed, "preserve_color": preserve_color}
    if steps is not None:
        if method != "gatys":
            raise AigcError(f"--steps counts Gatys' optimiser iterations; {method} stylises in one pass", field="--steps", fix="leave --steps out, or use --method gatys")
        given["steps"] = steps
    if method == "gatys":
        from aigc.models.style.gatys import Gatys

        network, info = Gatys(), None
    else:
        if loaded.info.family not in ("fast", "adain"):
            raise AigcError(f"{model} is a {loaded.info.family} model, which does not stylise", field="--model", fix="give a fast or adain run (or leave --model out for Gatys)")
        if loaded.info.family != method:
            raise AigcError(f"{model} is a {loaded.info.family} model, not {method}", field="--model", fix=f"give a {method} run, or --method {loaded.info.family}")
        network, info = loaded.module, loaded.info
    if "style" in network.request_class.model_fields:
        given["style"] = style
        if style_weight:
            given["style_weights"] = style_weight
    elif style or style_weight:  # a fast network's request has no style fields
        raise AigcError("a fast network has its style built in (it learned one style image)", field="--style",
                        fix="leave --style out, or use --method adain / gatys for another style")
    given.update(_params(param, network.request_class, set(given)))
    request = pipeline.validate(network, given)
    with _progress_bar() as progress:
        batch = pipeline.generate(network, request, info=info, policy=default_policy(), progress=progress)  # watermarked, signed when set
    path = batch.save_each(target.parent, stem=target.stem)[0] if len(batch) > 1 else _save_one(batch, target)
    console.print(f"wrote {path}", highlight=False)


def _method(method: str | None, model: str | None) -> str:
    """The method as given, checked against --model; "from the model" when only --model names it."""
    if method is not None and method not in METHODS:
        raise AigcError(f"unknown method {method!r}", field="--method", fix=f"use one of: {', '.join(METHODS)}")
    if model is None:
        if method in ("fast", "adain"):
            raise AigcError(f"{method} stylises with a trained network", field="--model",
                            fix=f"add --model RUN (train one: aigc train {method}-tiny --out runs/{method}), or use --method gatys")
        return "gatys"
    if method == "gatys":
        raise AigcError("Gatys optimises the image and takes no trained model", field="--model", fix="leave --model out, or use --method fast|adain")
    return method or "from the model"


def _save_one(batch, target: Path) -> Path:
    """One image as it is (a grid of one would add a border)."""
    from aigc.files import atomic_write_bytes

    return atomic_write_bytes(target, batch.files()[0].data)


def translate_command(
    run: str = typer.Argument(..., help="A trained cyclegan run folder or zoo name."),
    image: Path = typer.Argument(..., help="The image to translate."),
    reverse: bool = typer.Option(False, "--reverse", help="Translate from domain B to A instead of A to B."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output PNG (default ./translated/IMAGE.png)."),
    force: bool = typer.Option(False, "--force", help="Replace the output if it exists."),
) -> None:
    """Translate an image between a CycleGAN's two domains (e.g. handwritten <-> printed digits)."""
    from aigc.loading import load
    from aigc.safety import default_policy

    target = _checked_target(out or Path("translated") / f"{image.stem}.png", force)
    model = load(run)
    if model.info.family != "cyclegan":
        raise AigcError(f"{run} is a {model.info.family} model; translate takes a cyclegan run", field="RUN",
                        fix="train one: aigc train cyclegan-digits --out runs/cyclegan-digits (or use aigc stylize / generate)")
    request = {"image": str(image), "direction": "b_to_a" if reverse else "a_to_b", "seed": 0}
    batch = model.generate(request, policy=default_policy())
    console.print(f"wrote {_save_one(batch, target)}", highlight=False)
