"""docker-compose.yml is valid and wires production the way the operations notes say.

No Docker engine is needed: `docker-compose config` only reads and resolves the file. The
binary is required (Debian's `docker-compose` package, installed by .ci/run).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
LONG_RUNNING = ("bot", "worker", "trainer")


def _compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and subprocess.run(
        ["docker", "compose", "version"], capture_output=True
    ).returncode == 0:
        return ["docker", "compose"]
    pytest.fail("docker-compose is not installed: apt-get install -y docker-compose")


def _config(*arguments: str, profile: str | None = None, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_TOKEN", "ADMIN_IDS") and not k.startswith("TELEGRAM_WEBHOOK")}
    env.update(environment)
    profiles = ["--profile", profile] if profile else []
    return subprocess.run(
        [*_compose_command(), "-f", str(COMPOSE_FILE), *profiles, "config", *arguments],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )


@pytest.fixture(scope="module")
def resolved() -> dict:
    result = _config(TELEGRAM_TOKEN="123456:token", ADMIN_IDS="1,2")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_validates():
    result = _config("-q", TELEGRAM_TOKEN="123456:token")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_a_telegram_token():
    result = _config("-q")
    assert result.returncode != 0
    assert "TELEGRAM_TOKEN" in result.stderr


def test_every_service_of_production_is_there(resolved):
    # Services of a profile start only with --profile (Compose v1 lists them anyway).
    always = {name for name, service in resolved["services"].items() if not service.get("profiles")}
    assert always == {"redis", "postgres", "migrate", *LONG_RUNNING}


def test_worker_can_be_scaled(resolved):
    worker = resolved["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert worker["command"] == ["worker", "--queue", "captions"]
    assert resolved["services"]["trainer"]["command"] == ["worker", "--queue", "training"]


def test_redis_persists_and_both_stores_report_health(resolved):
    redis, postgres = resolved["services"]["redis"], resolved["services"]["postgres"]
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    assert any(volume.endswith(":/data:rw") or volume.endswith(":/data") for volume in redis["volumes"])
    assert redis["healthcheck"]["test"] and postgres["healthcheck"]["test"]
    assert any("/var/lib/postgresql/data" in volume for volume in postgres["volumes"])


def test_services_wait_for_healthy_stores_and_a_finished_migration(resolved):
    services = resolved["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in LONG_RUNNING:
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
        assert depends_on["redis"]["condition"] == "service_healthy", name
        assert depends_on["postgres"]["condition"] == "service_healthy", name


def test_services_share_settings_and_the_media_and_models_volumes(resolved):
    services = resolved["services"]
    for name in ("migrate", *LONG_RUNNING):
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:" in environment["DATABASE_URL"]
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
        assert environment["TELEGRAM_TOKEN"] == "123456:token"
        assert environment["ADMIN_IDS"] == "1,2"
    for name in LONG_RUNNING:
        volumes = services[name]["volumes"]
        environment = services[name]["environment"]
        assert f"media:{environment['MEDIA_DIR']}:rw" in volumes, name
        assert f"models:{environment['MODELS_ROOT']}:rw" in volumes, name
    assert {"media", "models", "redis-data", "postgres-data"} <= set(resolved["volumes"])


def test_dockerfile_builds_from_python_3_11_slim_and_copies_every_package():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.MULTILINE)
    assert "pip install --no-deps ." in dockerfile
    assert 'ENTRYPOINT ["captionbot"]' in dockerfile
    packages = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    for package in (name.rstrip("*") for name in packages):
        assert f"COPY {package} {package}" in dockerfile, package


WEBHOOK_URL = "https://bots.example/telegram"


@pytest.fixture(scope="module")
def webhook_resolved() -> dict:
    result = _config(profile="webhook", TELEGRAM_TOKEN="123456:token", TELEGRAM_WEBHOOK_URL=WEBHOOK_URL,
                     TELEGRAM_WEBHOOK_SECRET="shared-secret")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_the_webhook_profile_validates_with_and_without_its_settings():
    assert _config("-q", profile="webhook", TELEGRAM_TOKEN="123456:token").returncode == 0
    result = _config("-q", profile="webhook", TELEGRAM_TOKEN="123456:token", TELEGRAM_WEBHOOK_URL=WEBHOOK_URL,
                     TELEGRAM_WEBHOOK_SECRET="shared-secret")
    assert result.returncode == 0, result.stderr


def test_the_webhook_profile_runs_two_bot_replicas_with_one_url_and_secret(webhook_resolved):
    services = webhook_resolved["services"]
    first, second = services["bot"], services["bot-2"]
    assert services["bot-2"]["profiles"] == ["webhook"] and services["webhook-proxy"]["profiles"] == ["webhook"]
    assert second["command"] == ["bot", "--webhook", WEBHOOK_URL]
    for replica in (first, second):
        environment = replica["environment"]
        assert environment["TELEGRAM_WEBHOOK_URL"] == WEBHOOK_URL
        assert environment["TELEGRAM_WEBHOOK_SECRET"] == "shared-secret"
        assert environment["TELEGRAM_WEBHOOK_LISTEN"] == "0.0.0.0"
        assert environment["REDIS_URL"] == "redis://redis:6379/0", "per-user state is shared in Redis"
        assert "ports" not in replica, "only the proxy is reached from outside"
    assert second["depends_on"] == first["depends_on"]


def test_the_webhook_proxy_balances_over_both_replicas_on_their_webhook_port(webhook_resolved):
    services = webhook_resolved["services"]
    proxy = services["webhook-proxy"]
    assert proxy["image"].startswith("nginx:")
    assert set(proxy["depends_on"]) == {"bot", "bot-2"}
    [mount] = [volume for volume in proxy["volumes"] if "/etc/nginx/conf.d/" in volume]
    config_file = Path(mount.split(":")[0])
    config = config_file.read_text()
    port = services["bot"]["environment"]["TELEGRAM_WEBHOOK_PORT"]
    upstreams = re.findall(r"^\s*server\s+([\w-]+):(\d+)", config, re.MULTILINE)
    assert upstreams == [("bot", port), ("bot-2", port)]
    assert "proxy_pass http://captionbot_replicas;" in config
    assert proxy["ports"], "the proxy is what Telegram's URL reaches"


def test_without_a_webhook_url_the_bot_polls_and_the_second_replica_refuses():
    result = _config(profile="webhook", TELEGRAM_TOKEN="123456:token")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert services["bot"]["command"] == ["bot"] and services["bot"]["environment"]["TELEGRAM_WEBHOOK_URL"] == ""
    assert services["bot-2"]["command"] == ["bot", "--webhook", ""]  # `captionbot bot` refuses an empty URL


def test_long_running_services_report_ready_through_readyz_on_their_metrics_port(resolved):
    services = resolved["services"]
    for name in LONG_RUNNING:
        environment, healthcheck = services[name]["environment"], services[name]["healthcheck"]
        probe = " ".join(healthcheck["test"])
        assert f"127.0.0.1:{environment['METRICS_PORT']}/readyz" in probe, name
        assert environment["METRICS_HOST"] == "0.0.0.0", name  # the scraper is another container
    assert services["worker"]["healthcheck"]["start_period"] in ("3m0s", "180s", "3m")
    assert services["migrate"]["healthcheck"]["test"] == ["NONE"]  # a one-shot: its exit is what counts


def test_the_bot_starts_once_a_caption_worker_is_ready(resolved):
    assert resolved["services"]["bot"]["depends_on"]["worker"]["condition"] == "service_healthy"


def test_prometheus_finds_every_replica_of_each_process_it_scrapes():
    """Each DNS name Prometheus looks up is a service or a network alias, and the bot job's names
    reach both webhook replicas (one lookup of `bot` would miss bot-2)."""
    services = yaml.safe_load(_config(profile="webhook", TELEGRAM_TOKEN="123456:token").stdout)["services"]
    monitoring = yaml.safe_load(_config(profile="monitoring", TELEGRAM_TOKEN="123456:token").stdout)["services"]
    [mount] = [volume for volume in monitoring["prometheus"]["volumes"] if volume.endswith(":/etc/prometheus/prometheus.yml:ro")]
    scrape = yaml.safe_load(Path(mount.split(":")[0]).read_text())["scrape_configs"]

    def answering(name: str) -> set[str]:
        """The services whose containers Docker's DNS gives for `name`."""
        return {service for service, spec in services.items()
                if service == name or name in ((spec.get("networks") or {}).get("default") or {}).get("aliases", [])}

    jobs = {job["job_name"]: {name for sd in job.get("dns_sd_configs", []) for name in sd["names"]} for job in scrape}
    for job, names in jobs.items():
        for name in names:
            assert answering(name), f"{job}: no service answers {name}"
    bots = {service for service, spec in services.items() if spec.get("command", [None])[0] == "bot"}
    assert bots == {"bot", "bot-2"}
    assert set().union(*(answering(name) for name in jobs["bot"])) == bots
    assert set().union(*(answering(name) for name in jobs["worker"])) == {"worker"}
