"""GET /api/v1/models: what the studio serves and what each model accepts."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from functools import lru_cache
from pathlib import Path

from aigc.studio.catalog import ModelEntry
from aigc.studio.deps import Caller, get_caller, get_services
from aigc.studio.model_facts import form_defaults
from aigc.studio.routes.common import API, errors
from aigc.studio.schemas import ModelInfo, ModelList
from aigc.studio.services import Services

router = APIRouter(prefix=API, tags=["models"])


def model_info(entry: ModelEntry, max_count: int) -> ModelInfo:
    # A request field that means "the model's default" when left out shows that default (guidance 3, 50 steps).
    defaults = form_defaults(entry)
    accepts = [{**field, "default": defaults[field["name"]]} if field.get("default") is None and field["name"] in defaults else field for field in entry.accepts(max_count)]
    return ModelInfo(
        name=entry.name, family=entry.family, modality=entry.modality, description=entry.description, accepts=accepts,
        num_classes=entry.num_classes, checkpoint_sha256=entry.checkpoint_sha256, step=entry.step, card=_card(entry.name, entry.path),
    )


@lru_cache(maxsize=256)
def _card(name: str, path: str) -> dict | None:
    """The zoo's card for a zoo entry served under its own name (a run folder has none)."""
    from aigc import zoo
    from aigc.safety.cards import zoo_card

    item = zoo.get_entry(name)
    return zoo_card(name) if item is not None and Path(path).resolve() == item.path.resolve() else None


@router.get("/models", response_model=ModelList, response_model_exclude_none=True, responses=errors(401))
def list_models(services: Services = Depends(get_services), caller: Caller = Depends(get_caller)) -> ModelList:
    """Every model, with its modality and the parameters a job for it may set."""
    return ModelList(models=[model_info(entry, services.settings.max_images_per_job) for entry in services.catalog.entries()])


@router.get("/models/{name}", response_model=ModelInfo, response_model_exclude_none=True, responses=errors(401, 404))
def get_model(name: str, services: Services = Depends(get_services), caller: Caller = Depends(get_caller)) -> ModelInfo:
    from aigc.errors import AigcError
    from aigc.studio.errors import ApiError

    try:
        entry = services.catalog.get(name)
    except AigcError as error:
        raise ApiError(404, f"unknown model {name[:200]!r}", field="name", fix=error.fix) from None
    return model_info(entry, services.settings.max_images_per_job)
