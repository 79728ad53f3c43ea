"""Studio numbers: latency of a 16-image job through the API vs calling the model directly, and jobs/s
with 32 concurrent clients on loopback, counting every error.

    python benchmarks/studio_load.py                         # builds a dcgan-mnist-sized model (1 training step)
    python benchmarks/studio_load.py --model runs/dcgan-mnist --workers 2 --clients 32 --jobs-per-client 10

The server runs in its own process (`aigc studio` equivalent: uvicorn + local executor, SQLite), the
clients are asyncio + httpx in this process, on 127.0.0.1. Each job is POST /api/v1/jobs followed by a long
poll (GET /api/v1/jobs/{id}?wait=30) until it has succeeded, so latency is submit-to-result-available; with
--download the 16 PNGs are fetched too. Throughput is compared with the same jobs made by direct calls one after
another (`model.generate`, and with the PNG encoding a job needs); a single job's added latency is its API
latency minus the direct call with PNGs. The script prints a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from machine import cpu_name  # benchmarks run as scripts: this folder is on sys.path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def build_model(folder: Path) -> str:
    """A checkpoint with the dcgan-mnist preset's network (28x28, width 32, latent 64) after one step:
    the weights' values do not change the cost of generating."""
    import aigc

    run = folder / "dcgan-mnist-bench"
    data = ["data.name=digits"]  # the same network; the 8x8 digits load instantly and are resized to 28x28
    aigc.train("dcgan-mnist", overrides=[*data, "train.progress=false", "train.sample_every=0", "train.tensorboard=false", "train.checkpoint_every=0", "train.eval_every=0"], max_steps=1, out=run)
    return str(run)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, data_dir: Path, port: int, workers: int, batch_jobs: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "AIGC_DATA_DIR": str(data_dir),
        "AIGC_MODELS": json.dumps({"bench": model}),
        "AIGC_ZOO": "false",
        "AIGC_WORKERS": str(workers),
        "AIGC_BATCH_JOBS": str(batch_jobs),
        "AIGC_RATE_LIMIT_PER_MINUTE": "1000000",
        "AIGC_QUEUE_LIMIT": "100000",
        "AIGC_LOG_LEVEL": "WARNING",
        "AIGC_CHUNK_IMAGES": "16",
    }
    code = f"import typer; from aigc.studio.cli import studio_app; studio_app(['--port', '{port}'], standalone_mode=False)"
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


async def wait_ready(base: str, timeout: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get("/api/v1/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the studio did not start")


async def one_job(client, params: dict, download: bool) -> tuple[float, str | None]:
    started = time.perf_counter()
    response = await client.post("/api/v1/jobs", json={"model": "bench", "params": params})
    if response.status_code != 202:
        return time.perf_counter() - started, f"submit {response.status_code}: {response.text[:200]}"
    job = response.json()
    while job["status"] not in ("succeeded", "failed", "cancelled"):
        response = await client.get(job["url"], params={"wait": 30})
        if response.status_code != 200:
            return time.perf_counter() - started, f"status {response.status_code}"
        job = response.json()
    if job["status"] != "succeeded":
        return time.perf_counter() - started, f"job {job['status']}: {job['error']}"
    if download:
        for artifact in job["artifacts"]:
            content = await client.get(artifact["url"])
            if content.status_code != 200:
                return time.perf_counter() - started, f"artifact {content.status_code}"
    return time.perf_counter() - started, None


async def latency(base: str, samples: int, download: bool) -> list[float]:
    import httpx

    times = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for index in range(samples + 3):
            seconds, error = await one_job(client, {"count": 16, "seed": index * 16}, download)
            if error:
                raise RuntimeError(error)
            if index >= 3:  # the first jobs load the model and warm the caches
                times.append(seconds)
    return times


async def load(base: str, clients: int, jobs_per_client: int, count: int) -> dict:
    import httpx

    errors: list[str] = []
    times: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def worker(index: int) -> None:
            for job in range(jobs_per_client):
                seconds, error = await one_job(client, {"count": count, "seed": (index * jobs_per_client + job) * count}, False)
                times.append(seconds)
                if error:
                    errors.append(error)

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        wall = time.perf_counter() - started
    return {"jobs": clients * jobs_per_client, "seconds": wall, "jobs_per_second": clients * jobs_per_client / wall, "errors": errors, "p50": percentile(times, 50), "p95": percentile(times, 95)}


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def direct(model_path: str, samples: int) -> tuple[list[float], list[float], float]:
    """model.generate(16 images) alone, and with the PNG encoding the studio adds; and the CPU seconds per
    call with the PNGs (a machine shared with other work slows the wall times, less the CPU times)."""
    import aigc
    from aigc.generation.requests import ImageRequest

    model = aigc.load(model_path)
    generate, with_png, cpu = [], [], 0.0
    for index in range(samples + 3):
        started, started_cpu = time.perf_counter(), time.process_time()
        output = model.generate(ImageRequest(count=16, seed=index * 16))
        middle = time.perf_counter()
        output.files()  # the PNGs the studio stores
        ended = time.perf_counter()
        if index >= 3:
            generate.append(middle - started)
            with_png.append(ended - started)
            cpu += time.process_time() - started_cpu
    return generate, with_png, cpu / samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="run or checkpoint folder (default: build a dcgan-mnist-sized one)")
    parser.add_argument("--samples", type=int, default=50, help="sequential 16-image jobs for latency")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--jobs-per-client", type=int, default=10)
    parser.add_argument("--load-count", type=int, default=16, help="images per job under load")
    parser.add_argument("--workers", type=int, default=2, help="the server's worker threads")
    parser.add_argument("--batch-jobs", type=int, default=8)
    parser.add_argument("--download", action="store_true", help="latency includes fetching the 16 PNGs")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        model = args.model or build_model(Path(folder))
        generate, with_png, direct_cpu = direct(model, args.samples)
        port = free_port()
        server = start_server(model, Path(folder) / "studio", port, args.workers, args.batch_jobs)
        base = f"http://127.0.0.1:{port}"
        try:
            asyncio.run(wait_ready(base))
            api = asyncio.run(latency(base, args.samples, args.download))
            server_cpu, client_cpu = process_cpu_seconds(server.pid), time.process_time()
            loaded = asyncio.run(load(base, args.clients, args.jobs_per_client, args.load_count))
            server_cpu, client_cpu = process_cpu_seconds(server.pid) - server_cpu, time.process_time() - client_cpu
        finally:
            server.terminate()
            _, stderr = server.communicate(timeout=30)
    direct_rate, direct_png_rate = 1 / statistics.median(generate), 1 / statistics.median(with_png)
    result = {
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '1')}",
        "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        "direct_jobs_per_second": direct_rate,  # sequential model.generate(16 images), one after another
        "direct_png_jobs_per_second": direct_png_rate,  # the same with the PNG encoding a job needs
        "throughput_ratio": loaded["jobs_per_second"] / direct_rate,
        "throughput_ratio_png": loaded["jobs_per_second"] / direct_png_rate,
        "added_latency_p50_ms": (statistics.median(api) - statistics.median(with_png)) * 1000,
        # CPU per job: direct (generate + PNGs) against the server's CPU per job under load (clients' apart)
        "direct_png_cpu_ms_per_job": direct_cpu * 1000,
        "server_cpu_ms_per_job": server_cpu / loaded["jobs"] * 1000,
        "client_cpu_ms_per_job": client_cpu / loaded["jobs"] * 1000,
        "cpu_throughput_ratio_png": direct_cpu / (server_cpu / loaded["jobs"]),
        "direct_generate_p50_ms": statistics.median(generate) * 1000,
        "direct_generate_p95_ms": percentile(generate, 95) * 1000,
        "direct_generate_png_p50_ms": statistics.median(with_png) * 1000,
        "api_p50_ms": statistics.median(api) * 1000,
        "api_p95_ms": percentile(api, 95) * 1000,
        "ratio_p50": statistics.median(api) / statistics.median(generate),
        "ratio_p95": percentile(api, 95) / percentile(generate, 95),
        "load": {k: v for k, v in loaded.items() if k != "errors"} | {"errors": len(loaded["errors"]), "clients": args.clients, "images_per_job": args.load_count, "workers": args.workers},
        "download": args.download,
    }
    print("| measure | p50 | p95 |\n|---|---|---|")
    print(f"| model.generate(16 images), direct | {result['direct_generate_p50_ms']:.1f} ms | {result['direct_generate_p95_ms']:.1f} ms |")
    print(f"| direct + PNG encoding (what a job adds to the model) | {result['direct_generate_png_p50_ms']:.1f} ms | |")
    print(f"| 16-image job through the API{' + 16 downloads' if args.download else ''} | {result['api_p50_ms']:.1f} ms | {result['api_p95_ms']:.1f} ms |")
    print(f"| ratio API / direct | {result['ratio_p50']:.1f}x | {result['ratio_p95']:.1f}x |")
    load_ = result["load"]
    print(f"\n{args.clients} concurrent clients, {load_['jobs']} jobs of {args.load_count} images, {args.workers} worker threads: "
          f"{load_['jobs_per_second']:.1f} jobs/s ({load_['jobs_per_second'] * args.load_count:.0f} images/s), "
          f"job latency p50 {load_['p50'] * 1000:.0f} ms, p95 {load_['p95'] * 1000:.0f} ms, errors: {load_['errors']}")
    print(f"throughput through the API / direct calls: {result['throughput_ratio']:.0%} of model.generate alone "
          f"({direct_rate:.1f} jobs/s), {result['throughput_ratio_png']:.0%} of model.generate + PNG encoding ({direct_png_rate:.1f} jobs/s); "
          f"a single job's added latency p50 (API - direct with PNGs): {result['added_latency_p50_ms']:.1f} ms")
    print(f"CPU per job: direct with PNGs {result['direct_png_cpu_ms_per_job']:.1f} ms, the server under load {result['server_cpu_ms_per_job']:.1f} ms "
          f"({result['cpu_throughput_ratio_png']:.0%} of direct per CPU second; the benchmark's clients used {result['client_cpu_ms_per_job']:.1f} ms more)")
    print(f"machine: {result['machine']}; load average {result['load_average']}")
    if loaded["errors"]:
        print("first errors:", loaded["errors"][:5], file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if loaded["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
