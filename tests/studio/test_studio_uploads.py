"""Image uploads through the real app: stored content-addressed, checked (type, size, truncation, bombs),
and taken by every model whose request has image fields (AdaIN, fast style, CycleGAN) as `upload:<sha256>`."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from studio.studio_helpers import LOCAL, finished, submit


def encode(pixels: np.ndarray, format: str = "PNG", mode: str | None = None) -> bytes:
    image = Image.fromarray(pixels)
    if mode:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return buffer.getvalue()


def photo(height: int = 40, width: int = 48, seed: int = 0) -> np.ndarray:
    """A smooth colour picture with some texture (not noise: it compresses like a photo)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    channels = [128 + 100 * np.sin(x / (3 + c) + y / (5 + 2 * c) + c) + rng.normal(0, 8, (height, width)) for c in range(3)]
    return np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8)


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid PNG whose header claims width x height: a few bytes on disk, 1.2 GB once decoded."""
    data = bytearray(encode(photo(8, 8)))
    ihdr = 8 + 8  # signature, then the IHDR chunk's length and type
    data[ihdr:ihdr + 8] = struct.pack(">II", width, height)
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4:ihdr + 13])))
    return bytes(data)


@pytest.fixture
def client(make_settings, style_catalog):
    from fastapi.testclient import TestClient

    from aigc.studio.app import create_app

    def make(**overrides):
        return TestClient(create_app(make_settings(**overrides), catalog=style_catalog), client=LOCAL, raise_server_exceptions=False)

    with make() as test_client:
        test_client.make = make
        yield test_client


def upload(client, data: bytes, field: str = "content", name: str = "photo.png", media_type: str = "image/png"):
    return client.post("/api/v1/uploads", files={field: (name, data, media_type)})


def test_an_upload_is_stored_under_its_sha256_and_served_back(client):
    png = encode(photo())
    response = upload(client, png)
    assert response.status_code == 201, response.text
    body = response.json()
    digest = hashlib.sha256(png).hexdigest()
    assert body["id"] == digest and body["ref"] == f"upload:{digest}"
    assert (body["field"], body["format"], body["width"], body["height"], body["size_bytes"], body["notes"]) == ("content", "PNG", 48, 40, len(png), [])
    served = client.get(body["url"])
    assert served.status_code == 200 and served.content == png and served.headers["content-type"] == "image/png"
    assert upload(client, png, field="style").json()["id"] == digest  # the same file is one upload
    assert client.get(f"/api/v1/uploads/{'0' * 64}").status_code == 404
    assert client.get("/api/v1/uploads/..%2F..%2Fstudio.db").status_code == 404


def test_cmyk_grey_and_alpha_uploads_are_taken_and_say_what_is_converted(client):
    cmyk = upload(client, encode(photo(), "JPEG", "CMYK"), name="print.jpg", media_type="image/jpeg").json()
    assert (cmyk["format"], cmyk["notes"]) == ("JPEG", ["CMYK converted to RGB"])
    grey = upload(client, encode(photo(), "PNG", "L")).json()
    assert grey["notes"] == ["grayscale (L) converted to RGB"]
    alpha = upload(client, encode(photo(), "PNG", "RGBA")).json()
    assert alpha["notes"] == ["transparency composited on white"]


def test_bad_uploads_are_4xx_json_naming_the_field(client):
    jpeg = encode(photo(64, 64), "JPEG")
    cases = [
        (upload(client, b"just some text, not a picture\n", name="notes.txt", media_type="text/plain"), 415, "content", "not an image"),
        (upload(client, jpeg[: len(jpeg) // 2], field="style", name="cut.jpg", media_type="image/jpeg"), 422, "style", "truncated"),
        (upload(client, bomb_png(), field="image"), 413, "image", "decompression-bomb"),
        (upload(client, encode(photo(), "TIFF"), name="scan.tif", media_type="image/tiff"), 415, "content", "TIFF"),
        (upload(client, b"", name="empty.png"), 422, "content", "empty"),
        (client.post("/api/v1/uploads", content=b'--x\r\nContent-Disposition: form-data; name="content"\r\n\r\nupload:abc\r\n--x--\r\n',
                     headers={"content-type": "multipart/form-data; boundary=x"}), 422, "body", "no file"),
        (client.post("/api/v1/uploads", files=[("content", ("a.png", encode(photo()), "image/png")), ("style", ("b.png", encode(photo()), "image/png"))]), 422, "body", "could not be read"),
        (client.post("/api/v1/uploads", data={"content": "upload:abc"}), 415, "body", "multipart"),
        (client.post("/api/v1/uploads", json={"content": "photo.png"}), 415, "body", "multipart"),
    ]
    for response, status, field, words in cases:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["field"] == field and words in error["message"] and error["fix"], error


def test_an_upload_over_the_byte_limit_is_413(client):
    noise = encode(np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8))  # ~7 kB, incompressible
    with client.make(max_upload_bytes=4096) as small:
        response = upload(small, noise, field="style")
        assert response.status_code == 413 and response.json()["error"]["field"] == "style", response.text
        huge = upload(small, noise * 4, field="style")  # beyond the body limit too: refused before it is read
        assert huge.status_code == 413, huge.text
        assert upload(small, encode(photo(8, 8))).status_code == 201


def test_the_form_describes_image_fields_and_the_strength(client):
    models = {m["name"]: m for m in client.get("/api/v1/models").json()["models"]}
    paint = {f["name"]: f for f in models["paint"]["accepts"]}
    assert paint["content"]["format"] == "image" and paint["content"]["required"]
    assert (paint["style"]["format"], paint["style"]["type"]) == ("image", "array")
    assert (paint["alpha"]["minimum"], paint["alpha"]["maximum"]) == (0, 1)
    translate = {f["name"]: f for f in models["digits-ab"]["accepts"]}
    assert translate["image"]["format"] == "image"
    assert "format" not in paint["size"]


def test_style_and_translation_jobs_run_on_uploads(client):
    content = upload(client, encode(photo(40, 48))).json()
    style = upload(client, encode(photo(64, 64, seed=5)[:, ::-1].copy()), field="style").json()
    job = finished(client, submit(client, "paint", content=content["ref"], style=[style["ref"]], alpha=0.5, size=64, seed=3)["id"], timeout=60)
    assert job["status"] == "succeeded", job
    assert job["params"]["content"] == content["ref"] and job["params"]["style"] == [style["ref"]]  # references, not server paths
    (artifact,) = job["artifacts"]
    assert (artifact["width"], artifact["height"]) == (64, 52)  # long side 64, sides a multiple of the decoder's 2
    assert artifact["parameters"]["content_sha256"] == content["id"][:16]
    assert artifact["parameters"]["style_sha256"] == [style["id"][:16]]
    assert Image.open(io.BytesIO(client.get(artifact["url"]).content)).size == (64, 52)

    fast = finished(client, submit(client, "rings", content=content["ref"], size=64)["id"], timeout=60)
    assert fast["status"] == "succeeded" and len(fast["artifacts"]) == 1, fast

    digit = upload(client, encode(np.pad(np.full((12, 6), 255, np.uint8), 8)), field="image").json()
    translated = finished(client, submit(client, "digits-ab", image=digit["ref"], direction="b_to_a")["id"], timeout=60)
    assert translated["status"] == "succeeded", translated
    assert translated["artifacts"][0]["parameters"]["image_sha256"] == digit["id"][:16]


def test_image_fields_take_only_uploads(client, tmp_path):
    server_file = tmp_path / "private.png"
    server_file.write_bytes(encode(photo()))
    content = upload(client, encode(photo())).json()
    cases = [
        ({"content": str(server_file)}, "params.content", "expected an uploaded image"),  # the server's own files stay its own
        ({"content": content["ref"], "style": [content["ref"], f"upload:{'ab' * 32}"]}, "params.style.1", "no upload"),
        ({"content": "upload:not-a-hash"}, "params.content", "expected an uploaded image"),
        ({"content": content["ref"], "style": [content["ref"]], "alpha": 1.5}, "params.alpha", "less than or equal to 1"),
    ]
    for params, field, words in cases:
        response = client.post("/api/v1/jobs", json={"model": "paint", "params": params})
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["field"] == field and words in error["message"], error


def test_uploads_resolve_through_a_store_without_local_files(tmp_path):
    from aigc.generation.requests import StyleRequest
    from aigc.studio.storage import LocalArtifactStore
    from aigc.studio.uploads import resolve_uploads, store_upload

    class RemoteStore(LocalArtifactStore):  # as an object store: bytes by key, no file paths
        def local_path(self, key):
            return None

    store = RemoteStore(tmp_path / "store")
    png = encode(photo())
    stored = store_upload(store, png, field="content", max_bytes=10**6, max_pixels=10**6)
    resolved = resolve_uploads(StyleRequest, {"content": stored.ref, "style": [stored.ref], "alpha": 0.3}, store)
    assert resolved["alpha"] == 0.3
    for path in (resolved["content"], *resolved["style"]):
        assert open(path, "rb").read() == png


def test_a_captioner_job_takes_an_uploaded_image(make_settings, tmp_path):
    """The same upload field serves image-to-text: the captioner's `image` takes `upload:<sha256>`."""
    from fastapi.testclient import TestClient
    from helpers import train_tiny

    from aigc.studio.app import create_app
    from aigc.studio.catalog import ModelCatalog

    catalog = ModelCatalog.from_paths({"captions": str(train_tiny("captioner", tmp_path / "captioner").run_dir)})
    with TestClient(create_app(make_settings(), catalog=catalog), client=LOCAL, raise_server_exceptions=False) as client:
        accepts = {f["name"]: f for f in client.get("/api/v1/models").json()["models"][0]["accepts"]}
        assert accepts["image"]["format"] == "image"
        digit = upload(client, encode(np.pad(np.full((12, 6), 255, np.uint8), 8)), field="image").json()
        job = finished(client, submit(client, "captions", image=digit["ref"], num_beams=2)["id"], timeout=60)
        assert job["status"] == "succeeded" and job["params"]["image"] == digit["ref"], job
        assert job["artifacts"][0]["kind"] == "text"
        refused = client.post("/api/v1/jobs", json={"model": "captions", "params": {"image": str(tmp_path / "x.png")}})
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "params.image"


def test_a_fast_network_shows_no_style_upload_and_refuses_one(client):
    """A fast network learned one style: its form has no style field, and a job that sends one is refused
    when it is submitted (naming the field and what the model does take), not when it runs."""
    models = {m["name"]: m for m in client.get("/api/v1/models").json()["models"]}
    rings = [f["name"] for f in models["rings"]["accepts"]]
    assert "content" in rings and "style" not in rings and "style_weights" not in rings
    assert "style" in [f["name"] for f in models["paint"]["accepts"]]  # AdaIN takes any style image
    content = upload(client, encode(photo())).json()
    style = upload(client, encode(photo(seed=3)), field="style").json()
    for params, field in [({"style": [style["ref"]]}, "params.style"), ({"style_weights": [1.0]}, "params.style_weights")]:
        response = client.post("/api/v1/jobs", json={"model": "rings", "params": {"content": content["ref"], **params}})
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["field"] == field and "does not take" in error["message"] and "content" in error["fix"] and "style" not in error["fix"], error


@pytest.fixture
def gatys_client(make_settings, style_catalog):
    from fastapi.testclient import TestClient

    from aigc.studio.app import create_app
    from aigc.studio.catalog import ModelCatalog, gatys_entry

    catalog = ModelCatalog([*style_catalog.entries(), gatys_entry()])
    with TestClient(create_app(make_settings(), catalog=catalog), client=LOCAL, raise_server_exceptions=False) as test_client:
        yield test_client


def test_gatys_is_offered_with_its_size_and_steps_capped_and_runs_on_uploads(gatys_client):
    """Gatys through the studio: any uploaded style, over the packaged VGG16, with size <= 256 and steps <= 100
    (said on the page) so a job stays within about a minute on a CPU; out-of-range values, a missing style
    image and a second image are refused at submission with the field named."""
    client = gatys_client
    model = client.get("/api/v1/models/gatys").json()
    accepts = {f["name"]: f for f in model["accepts"]}
    assert accepts["content"]["format"] == accepts["style"]["format"] == "image" and accepts["style"]["required"]
    assert (accepts["size"]["maximum"], accepts["steps"]["maximum"], accepts["count"]["maximum"]) == (256, 100, 1)
    assert "256 px" in model["description"] and "100 steps" in model["description"] and "step" not in model
    content = upload(client, encode(photo(40, 48))).json()
    style = upload(client, encode(photo(140, 140, seed=5)), field="style").json()
    refused = [
        ({"size": 512}, "params.size", "less than or equal to 256"),
        ({"steps": 101}, "params.steps", "less than or equal to 100"),
        ({"count": 2}, "params.count", "less than or equal to 1"),
        ({"style": []}, "params.style", "at least 1"),
        ({"scales": 2}, "params.scales", "does not take"),
    ]
    for params, field, words in refused:
        response = client.post("/api/v1/jobs", json={"model": "gatys", "params": {"content": content["ref"], "style": [style["ref"]], **params}})
        assert response.status_code == 422, (params, response.text)
        error = response.json()["error"]
        assert error["field"] == field and words in error["message"], (params, error)
    missing = client.post("/api/v1/jobs", json={"model": "gatys", "params": {"content": content["ref"]}})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "params.style", missing.text
    small = upload(client, encode(photo(64, 64, seed=5)), field="style").json()  # below relu5_1's receptive field
    failed = finished(client, submit(client, "gatys", content=content["ref"], style=[small["ref"]], size=64, steps=1)["id"], timeout=60)
    assert failed["status"] == "failed" and "needs at least 132" in failed["error"], failed.get("error")

    job = finished(client, submit(client, "gatys", content=content["ref"], style=[style["ref"]], size=64, steps=3, seed=0)["id"], timeout=60)
    assert job["status"] == "succeeded", job.get("error")
    (artifact,) = job["artifacts"]
    assert (artifact["width"], artifact["height"]) == (64, 53)
    parameters = artifact["parameters"]
    assert parameters["method"] == "gatys" and parameters["steps"] == 3 and parameters["style_sha256"] == [style["id"][:16]]
    assert parameters["vgg"].startswith("vgg16 3be917fb")  # the packaged VGG16, by its hash
    again = finished(client, submit(client, "gatys", content=content["ref"], style=[style["ref"]], size=64, steps=3, seed=0)["id"], timeout=60)
    assert client.get(again["artifacts"][0]["url"]).content == client.get(artifact["url"]).content  # deterministic
