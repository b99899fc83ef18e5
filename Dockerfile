# The tradecast app image: the API and desk loop (`tradecast serve`). In compose.yaml the LLM
# runs in Ollama on the GPU, so this image stays CPU-only (torch CPU for the embeddings).
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY scripts ./scripts
COPY src ./src
# llama.cpp portable (AVX2, no -march=native, no AMX): the image runs on any x86-64 node
RUN python -m venv /opt/tradecast \
    && /opt/tradecast/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/tradecast/bin/pip install --no-cache-dir \
        --extra-index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && scripts/install-llama.sh /opt/tradecast/bin/pip \
    && /opt/tradecast/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 tradecast
COPY --from=build /opt/tradecast /opt/tradecast
ENV PATH=/opt/tradecast/bin:$PATH \
    TRADECAST_DATA_DIR=/data \
    TRADECAST_API__HOST=0.0.0.0 \
    TRADECAST_LOG_FORMAT=json \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    ANONYMIZED_TELEMETRY=False
RUN mkdir /data && chown tradecast /data
USER tradecast
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
    CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" || exit 1
CMD ["tradecast", "serve", "--port", "8000"]
