"""Safety around generation: prompt moderation that explains itself, invisible watermarks, privacy.

    from aigc.safety import default_policy
    artifact = model.generate(request, policy=default_policy())   # what `aigc generate` and the studio do

`default_policy(settings)` builds the one `GenerationPolicy` (generation/pipeline.py) from the safety
settings (safety/settings.py, read from the environment by default): the moderation check before
generation, the watermarks after it, and content credentials (a signed C2PA manifest) on the files.
The pipeline never imports this package; the policy is injected.
"""

from __future__ import annotations

from aigc.generation.pipeline import GenerationPolicy
from dataclasses import asdict

from aigc.safety.moderation import Decision, Finding, ModerationCheck, ModerationError, moderate, moderator_for, request_texts
from aigc.safety.settings import SafetySettings

__all__ = ["Decision", "Finding", "ModerationError", "SafetySettings", "default_policy", "moderate", "moderate_request", "warning_record"]


def moderate_request(request, settings: SafetySettings | None = None, prefix: str = "") -> list[Decision]:
    """The moderation decisions for a request's prompts, refusing a blocked one with a ModerationError
    whose field is `prefix` + the request field (the studio calls this when a job is submitted, with
    prefix "params.", so a refusal is a 4xx before anything is queued)."""
    settings = settings or SafetySettings.from_env()
    if not settings.moderation:
        return []
    check = ModerationCheck(moderator_for(None if settings.policy_file is None else str(settings.policy_file)), warn=False)
    try:
        check(request)
    except ModerationError as error:
        raise ModerationError(error.decision, field=prefix + (error.field or "prompt")) from None
    return check.decisions


def warning_record(request, decisions: list[Decision], *, scrub_personal_data: bool = False) -> dict | None:
    """What a job stores about its warned prompts: {"action": "warn", "findings": [{"field", "category",
    "method", "evidence", "matched", "score", "threshold", "action"}, ...]}, or None when nothing warned.
    With `scrub_personal_data` the evidence is scrubbed too (an e-mail found in the prompt is not kept)."""
    from aigc.safety.privacy import scrub

    by_text = {decision.text: decision for decision in decisions}
    findings = []
    for name, text in request_texts(request):
        decision = by_text.get(text)
        if decision is None or decision.action != "warn":
            continue
        for finding in decision.findings:
            item = {"field": name, **asdict(finding)}
            if scrub_personal_data:
                item["evidence"], item["matched"] = scrub(item["evidence"]), scrub(item["matched"])
            findings.append(item)
    return {"action": "warn", "findings": findings} if findings else None


def default_policy(settings: SafetySettings | None = None) -> GenerationPolicy:
    """The generation policy for these settings (default: from the environment, SafetySettings.from_env)."""
    settings = settings or SafetySettings.from_env()
    before, after, logits = [], [], []
    if settings.moderation:
        before.append(ModerationCheck(moderator_for(None if settings.policy_file is None else str(settings.policy_file))))
    if settings.output_checks != "off":  # first: the output as the model made it, before any mark
        from aigc.safety.output_checks import default_checks

        after.append(default_checks(settings.output_checks))
    if settings.watermark:
        from aigc.safety.watermark.audio import AudioWatermark
        from aigc.safety.watermark.image import ImageWatermark

        from aigc.safety.watermark.text import TextWatermark

        text_mark = TextWatermark(settings.watermark_key)
        after += [ImageWatermark(settings.watermark_key), AudioWatermark(settings.watermark_key), text_mark.record]
        logits.append(text_mark)
    if settings.signing_dir is not None:  # last: it signs the files as they are finally encoded
        from aigc.safety.credentials import ContentCredentials, SigningCredentials

        after.append(ContentCredentials(SigningCredentials.load(settings.signing_dir)))
    return GenerationPolicy(before=tuple(before), after=tuple(after), logits=tuple(logits))
