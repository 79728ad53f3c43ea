"""What clients send, checked at the API's boundary, with errors in our words (field, what was expected, fix).

    validate_job(catalog, "digits", {"count": 4}, settings) -> (entry, request)   # a job's params
    describe_errors(pydantic_error.errors(), prefix="params") -> ("params.count", "expected ...")

Three rules hold for every request: text is a sequence of Unicode scalar values (a lone surrogate such as
"\\ud800", which JSON can spell but UTF-8 cannot store, is refused for any field, `reject_lone_surrogates`);
job parameters are checked strictly, as JSON (`true` is not a count, "3" is not a seed); and no message
leaks pydantic's wording or its internal locations (`Value error, ...`, `params.prompt.str`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ValidationError

from aigc.errors import AigcError
from aigc.generation.requests import image_fields
from aigc.studio.errors import ApiError


# --------------------------------------------------------------------------------------------- text


def lone_surrogate(value: Any, where: str) -> str | None:
    """The path of the first string (or dict key) holding a lone surrogate, or None."""
    if isinstance(value, str):
        return where if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = lone_surrogate(key, where) or lone_surrogate(item, f"{where}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = lone_surrogate(item, f"{where}.{index}")
            if found:
                return found
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")
# JSON spells a surrogate only as an escape \uD800..\uDFFF (raw surrogate bytes are not UTF-8 and fail
# parsing): bodies without one are not parsed a second time.
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_FIX = "send text as valid Unicode: every \\uD800-\\uDBFF escape must be followed by a \\uDC00-\\uDFFF one (a pair)"


async def reject_lone_surrogates(request: Request) -> None:
    """App-wide dependency: a 422 naming the field for any string in the query or the JSON body that is
    not valid Unicode, before any route sees it (and long before the database would refuse it)."""
    for name, value in request.query_params.multi_items():
        if lone_surrogate(name, name) or lone_surrogate(value, name):
            raise ApiError(422, "text holds a lone surrogate (not valid Unicode)", field=name, fix=_SURROGATE_FIX)
    body = await request.body()
    if not body or not _ESCAPED_SURROGATE.search(body):
        return
    try:
        document = json.loads(body)
    except ValueError:
        return  # not JSON: the route's own parsing answers 400
    where = lone_surrogate(document, "body")
    if where:
        raise ApiError(422, "text holds a lone surrogate (not valid Unicode)", field=where.partition(".")[2] or "body", fix=_SURROGATE_FIX)


def readable(value: Any) -> Any:
    """A stored value made safe to send: lone surrogates (rows written before they were refused, or by
    other tools) become U+FFFD, so reading a row never fails."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {readable(key): readable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [readable(item) for item in value]
    return value


def check_strings(value: Any, max_chars: int, where: str) -> None:
    """Text parameters: no control characters (tab and newline are fine), at most max_chars."""
    if isinstance(value, str):
        if len(value) > max_chars:
            raise AigcError(f"text is {len(value)} characters, the limit is {max_chars}", field=where, fix="shorten it")
        bad = next((c for c in value if (ord(c) < 32 and c not in "\t\n\r") or 0x7F <= ord(c) < 0xA0), None)
        if bad is not None:
            raise AigcError(f"contains the control character U+{ord(bad):04X}", field=where, fix="remove control characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_strings(str(key), max_chars, where)
            check_strings(item, max_chars, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_strings(item, max_chars, f"{where}.{index}")


# ------------------------------------------------------------------------------------ error wording

# Our words for pydantic's type errors; a union's alternatives are joined with "or".
_EXPECTED = {
    "int_type": "a whole number", "int_parsing": "a whole number", "int_from_float": "a whole number",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "text (a JSON string)", "list_type": "a list (a JSON array)", "tuple_type": "a list (a JSON array)",
    "dict_type": "an object", "model_type": "an object", "model_attributes_type": "an object", "none_required": "null",
}
# Parts of a location that name a union member or a validator, not a field ("prompt", "str" -> "prompt").
_TYPE_TAG = re.compile(r"^(str|int|float|bool|bytes|none|list|dict|tuple|set|literal|union|nullable|is-instance|json-or-python|lax-or-strict|chain|function-\w+|tagged-union)(\[.*\])?$")


def _path(loc: tuple[Any, ...], prefix: str) -> str:
    parts = [str(part) for part in loc if not (isinstance(part, str) and _TYPE_TAG.match(part))]
    return ".".join([prefix, *parts] if prefix else parts)


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _sentence(item: dict[str, Any]) -> str:
    kind = item.get("type", "")
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}"
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in ("value_error", "assertion_error"):
        error = (item.get("ctx") or {}).get("error")
        return str(error) if error is not None else re.sub(r"^(Value|Assertion) error, ", "", item.get("msg", "invalid"))
    return item.get("msg", "invalid")


def describe_errors(items: list[dict[str, Any]], prefix: str = "") -> tuple[str, str]:
    """(field, message) for pydantic errors: the deepest location wins (it says the most), the
    alternatives of a union become one "expected A or B", and the value that was sent is quoted."""
    if not items:
        return prefix or "body", "invalid"

    def where(item: dict[str, Any]) -> str:
        return _path(tuple(item.get("loc", ())), prefix) or "body"

    depth = max(where(item).count(".") for item in items)
    field = next(where(item) for item in items if where(item).count(".") == depth)
    same = [item for item in items if where(item) == field]
    if len(same) > 1 and all(item.get("type") in _EXPECTED for item in same):
        expected = list(dict.fromkeys(_EXPECTED[item["type"]] for item in same))
        message = "expected " + " or ".join(expected)
    else:
        message = _sentence(same[0])
    if "input" in same[0] and same[0].get("type") not in ("missing", "extra_forbidden"):
        message += f" (got {_shown(same[0]['input'])})"
    others = len({where(item) for item in items}) - 1
    if others > 0:
        message += f" (and {others} more problem{'s' if others > 1 else ''})"
    return field, message


# --------------------------------------------------------------------------------------------- jobs


def validate_job(catalog, model: str, params: dict[str, Any], *, max_count: int, max_chars: int, store=None) -> tuple[Any, BaseModel]:
    """The model's own request class validates the parameters (strictly, as the JSON they came in);
    the studio's limits come first, so an error states the limit that really applies. Image fields take
    uploads (`upload:<sha256>`, studio/uploads.py) found in `store`: the request is validated with their
    files, and keeps the references (a job holds no server path)."""
    from aigc.studio.model_facts import needs_prompt
    from aigc.studio.uploads import resolve_uploads

    entry = catalog.get(model)
    check_strings(params, max_chars, "params")
    count = params.get("count")
    if isinstance(count, int) and not isinstance(count, bool) and count > max_count:
        raise AigcError(f"at most {max_count} samples per job (got {_shown(count)})", field="params.count", fix="split the work into several jobs")
    uploads = {name: params[name] for name in image_fields(entry.request_class) if name in params}
    try:
        request = entry.request_class.model_validate_json(json.dumps(resolve_uploads(entry.request_class, params, store)), strict=True)
    except ValidationError as error:
        items = error.errors()
        if items and items[0]["type"] == "extra_forbidden":
            valid = ", ".join(field["name"] for field in entry.accepts(max_count))
            raise AigcError("this model does not take this parameter", field=_path(tuple(items[0]["loc"]), "params"), fix=f"it takes: {valid}") from None
        field, message = describe_errors(items, "params")
        raise AigcError(message, field=field) from None
    if uploads:
        request = request.model_copy(update=uploads)  # the references, not this process's paths, are stored
    count = getattr(request, "count", None)
    seed = getattr(request, "seed", None)
    if seed is not None and seed + (count or 1) > 2**63 - 1:
        raise AigcError("seed + count must stay below 2**63", field="params.seed", fix="use a smaller seed")
    if hasattr(request, "labels_for"):
        try:
            request.labels_for(entry.num_classes)
        except AigcError as error:
            raise AigcError(str(error).split(": ", 1)[-1].split("\n")[0], field=f"params.{error.field or 'labels'}", fix=error.fix) from None
    if needs_prompt(entry) and getattr(request, "prompt", None) is None and getattr(request, "labels", None) is None:
        fix = 'describe the image, e.g. "a handwritten seven" or "一个笑脸"'
        if entry.num_classes is not None:
            fix += f", or pick classes with labels (0..{entry.num_classes - 1})"
        raise AigcError("this text-to-image model needs a prompt", field="params.prompt", fix=fix)
    return entry, request
