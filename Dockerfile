# One image for every service (bot, worker, trainer, migrate); docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/data \
    MEDIA_DIR=/data/media \
    MODELS_ROOT=/data/models \
    MODEL_DIR=/app/models/default

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so a code change does not reinstall TensorFlow.
# EXTRAS: optional dependency sets to add, comma-separated (e.g. onnxruntime, for ENCODER_RUNTIME).
ARG EXTRAS=""
COPY pyproject.toml ./
RUN EXTRAS="$EXTRAS" python -c "import os, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
extras = [d for e in os.environ['EXTRAS'].split(',') if e.strip() for d in p['optional-dependencies'][e.strip()]]; \
print('\n'.join(p['dependencies'] + extras))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY README.md ./
COPY captioning captioning
COPY training training
COPY store store
COPY worker worker
COPY bot bot
COPY sandbox sandbox
COPY service service
COPY captionbot captionbot
COPY migrations migrations
RUN pip install --no-deps .

# The shipped model; trained versions go to the models volume (MODELS_ROOT).
COPY models/default models/default

RUN useradd --create-home --uid 10001 captionbot \
    && mkdir -p /data/media /data/models /data/features \
    && chown -R captionbot /data
USER captionbot
# /metrics, /healthz and /readyz when METRICS_PORT is set (docker-compose.yml sets 9100).
EXPOSE 9100
VOLUME ["/data/media", "/data/models", "/data/features"]

ENTRYPOINT ["captionbot"]
CMD ["--help"]
