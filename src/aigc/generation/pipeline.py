"""The one generation path: every caller — the CLI, the Python API, the studio's jobs, evaluation and the
training loop's sample grids — makes artifacts through `generate` (or `stream` for text as it is made).

    1. validate   the request becomes the model's own request class (a dict or a more general request is
                  checked against it; a wrong field is an error that names it)
    2. before     the policy's request checks run (moderation plugs in here); one may refuse by raising
    3. generate   model.generate(request), with progress reported to `progress(done, total)` if given
    4. after      the policy's artifact hooks run in order (watermarks, output checks); each returns the artifact
    5. provenance the artifact records where it came from: the checkpoint, its weights and step (RunInfo)

A family's `generate` stays pure (request in, artifact out); nothing else knows about policies.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

from pydantic import BaseModel, ValidationError

from aigc.errors import AigcError
from aigc.generation.decoding import LogitHook, logit_hooks
from aigc.generation.progress import Progress, listening
from aigc.generation.requests import keep_seeds

if TYPE_CHECKING:
    from aigc.loading import RunInfo

RequestCheck = Callable[[Any, "RunInfo | None"], None]  # raise AigcError to refuse the request
ArtifactHook = Callable[[Any, Any, "RunInfo | None"], Any]  # (artifact, request, info) -> artifact


@dataclass(frozen=True)
class GenerationPolicy:
    """What happens around `model.generate`: request checks before it, artifact hooks after it, and logit
    hooks inside a text model's decoding (generation/decoding.py: a text watermark)."""

    before: tuple[RequestCheck, ...] = ()
    after: tuple[ArtifactHook, ...] = ()
    logits: tuple[LogitHook, ...] = ()


def validate(model: Any, request: Any) -> Any:
    """The request as the model's own request class (step 1)."""
    from aigc.config import _explain

    request_class = getattr(model, "request_class", None)
    if request_class is None:
        raise AigcError(f"{type(model).__name__} does not generate", field="model", fix="load a trained model with aigc.load")
    if isinstance(request, request_class):
        return request
    if isinstance(request, BaseModel):
        values = request.model_dump(exclude_unset=True)
        if "seed" not in values:
            values["seed"] = request.seed  # a random seed already drawn stays the one used
    elif isinstance(request, dict):
        values = request
    else:
        raise AigcError(f"expected a request, got {type(request).__name__}", field="request", fix=f"pass a {request_class.__name__}")
    try:
        return keep_seeds(request, request_class.model_validate(values))
    except ValidationError as error:
        raise _explain(error, request_class, "request") from None


def record_provenance(artifact: Any, info: "RunInfo | None") -> Any:
    """Step 5: the artifact names the loaded model and records its checkpoint, weights and step."""
    if info is None:  # a model being trained (sample grids): its family name is all there is
        return artifact
    return dataclasses.replace(artifact, model=info.model_name, parameters={**artifact.parameters, **info.provenance()})


def _finish(artifact: Any, request: Any, info: "RunInfo | None", policy: GenerationPolicy | None) -> Any:
    """Steps 4 and 5: the policy's artifact hooks, then the run's provenance."""
    for hook in policy.after if policy else ():
        artifact = hook(artifact, request, info)
    return record_provenance(artifact, info)


def generate(model: Any, request: Any, *, info: "RunInfo | None" = None, policy: GenerationPolicy | None = None, progress: Progress | None = None) -> Any:
    """Make one artifact (an ImageBatch, TextSample or AudioClip) for a request: steps 1-5 above."""
    request = validate(model, request)
    for check in policy.before if policy else ():
        check(request, info)
    with listening(progress), logit_hooks(policy.logits if policy else ()):
        artifact = model.generate(request)
    return _finish(artifact, request, info, policy)


class TextStream:
    """Text pieces of one sampled sequence as they are decided; afterwards `.artifact` is what `generate`
    returns for the same request (same text, policy hooks applied, provenance recorded)."""

    def __init__(self, model: Any, request: Any, info: "RunInfo | None", policy: GenerationPolicy | None):
        self._model, self._request, self._info, self._policy = model, request, info, policy
        self.artifact: Any = None

    def __iter__(self) -> Iterator[str]:
        with logit_hooks(self._policy.logits if self._policy else ()):
            streamed = self._model.stream(self._request)
            yield from streamed
        self.artifact = _finish(streamed.sample, self._request, self._info, self._policy)


def can_stream(model: Any, request: Any) -> bool:
    """Whether `stream` applies: a text model that streams, one sampled sequence (no beam search)."""
    return callable(getattr(model, "stream", None)) and getattr(request, "count", 1) == 1 and getattr(request, "num_beams", 1) == 1


def stream(model: Any, request: Any, *, info: "RunInfo | None" = None, policy: GenerationPolicy | None = None) -> TextStream:
    """Like `generate`, for text models that can stream (see `can_stream`): iterate for the pieces."""
    request = validate(model, request)
    if not can_stream(model, request):
        raise AigcError("streaming makes one sampled text", field="count", fix="use count 1 and no beam search, or generate without streaming")
    for check in policy.before if policy else ():
        check(request, info)
    return TextStream(model, request, info, policy)
