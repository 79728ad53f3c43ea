"""The "safety settings" part of a model card: what the generation path does around this model's outputs
under the current settings (SafetySettings.from_env), in words. `aigc models show NAME` and the studio's
model list print it beside the zoo's card (aigc/zoo/cards.toml).

    safety_notes("image", image_size=28, takes_prompt=False)
    -> ["invisible watermark: none (images of at least 256 px are marked; this model makes 28x28) ...", ...]
"""

from __future__ import annotations

from aigc.safety.settings import SafetySettings


def safety_notes(modality: str, *, image_size: int | None = None, takes_prompt: bool = False, settings: SafetySettings | None = None) -> list[str]:
    """One line per safety measure: whether and how it applies to a model of this modality."""
    from aigc.safety.watermark.image import MIN_SIDE

    settings = settings or SafetySettings.from_env()
    notes = []
    if takes_prompt:
        policy = settings.policy_file or "the packaged policy"
        notes.append(f"prompts: moderated before generating ({policy}): blocked categories are refused with the reason, warned ones run and say why"
                     if settings.moderation else "prompts: NOT moderated (AIGC_MODERATION=off)")
    if not settings.watermark:
        notes.append("invisible watermark: OFF (AIGC_WATERMARK=off)")
    elif modality in ("image", "translation"):  # a translation model makes images at its training size
        if image_size is not None and image_size < MIN_SIDE:
            notes.append(f"invisible watermark: none (images of at least {MIN_SIDE} px are marked; this model makes {image_size}x{image_size})")
        else:
            notes.append("invisible watermark: every image (keyed 48-bit mark, detected by `aigc verify FILE`)")
    elif modality == "style":  # the output's size is the request's (`size`), not the training crops'
        notes.append(f"invisible watermark: every image of at least {MIN_SIDE} px (the request's size; smaller ones carry provenance metadata only)")
    elif modality == "text":
        notes.append("invisible watermark: green-list watermark in sampled text (z-score detector: `aigc verify FILE.txt --model NAME`)")
    elif modality == "audio":
        notes.append("invisible watermark: spread-spectrum mark in every clip (`aigc verify FILE.wav`)")
    notes.append("near-copy output checks: off (AIGC_OUTPUT_CHECKS=warn or block compares outputs with the training data)" if settings.output_checks == "off"
                 else f"near-copy output checks: {settings.output_checks} (outputs compared with the training data)")
    signing = getattr(settings, "signing_dir", None)
    notes.append(f"content credentials: signed C2PA manifest on each file ({signing})" if signing else "content credentials: files are not signed (set AIGC_SIGNING_DIR; `aigc keys init-signing DIR` makes development keys)")
    notes.append("provenance: every file records the model, its checkpoint hash, the seed and the settings")
    return notes


def zoo_card(name: str, settings: SafetySettings | None = None) -> dict | None:
    """A zoo entry's whole card (aigc.zoo.model_card) with its "safety" lines; None for a name not in the zoo."""
    from aigc import checkpoint, zoo

    entry = zoo.get_entry(name)
    if entry is None:
        return None
    card = zoo.model_card(entry)
    model = checkpoint.read_sidecar(entry.path / "weights").get("config", {}).get("model", {})
    # A prompt reaches a text model, and an image model conditioned on text (as the studio's needs_prompt reads it).
    takes_prompt = entry.modality == "text" or "text" in (model.get("conditioning"), model.get("condition_source"))
    card["safety"] = safety_notes(entry.modality, image_size=model.get("image_size"), takes_prompt=takes_prompt, settings=settings)
    return card
