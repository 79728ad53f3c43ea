# aigc studio: the API + page (`aigc studio`) and, from the same image, Celery workers (`aigc worker`).
#
#   docker build -t aigc .
#   docker run -p 8000:8000 -v aigc-data:/data aigc            # SQLite + local executor; keys required (not loopback)
#   docker run --rm -v aigc-data:/data aigc aigc studio keys create me
#   docker compose up                                            # api + worker + redis + postgres (compose.yaml)
#
# CPU build of torch from the PyTorch index (PyPI's default wheel is the multi-GB CUDA build). For a GPU
# worker, build with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 and run one worker per GPU.
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OMP_NUM_THREADS=2 \
    AIGC_DATA_DIR=/data \
    AIGC_HOST=0.0.0.0 \
    AIGC_PORT=8000

WORKDIR /app
# torch first, alone: the biggest layer, and it changes least often.
RUN pip install --index-url "$TORCH_INDEX" torch==2.13.0
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install '.[celery,postgres,mysql]' \
 && useradd --create-home --uid 10001 aigc \
 && mkdir -p /data && chown aigc:aigc /data

USER aigc
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=4)"
CMD ["aigc", "studio", "--host", "0.0.0.0", "--port", "8000"]
