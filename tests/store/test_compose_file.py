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


def _config(*arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_TOKEN", "ADMIN_IDS")}
    env.update(environment)
    return subprocess.run(
        [*_compose_command(), "-f", str(COMPOSE_FILE), "config", *arguments],
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
    production = {name for name, service in resolved["services"].items() if not service.get("profiles")}
    assert production == {"redis", "postgres", "migrate", *LONG_RUNNING}


def test_compose_file_validates_with_every_profile():
    profiles = {profile for service in yaml.safe_load(COMPOSE_FILE.read_text())["services"].values()
                for profile in service.get("profiles", [])}
    assert "monitoring" in profiles
    for profile in profiles:
        result = _config("--profile", profile, "-q", TELEGRAM_TOKEN="123456:token")
        assert result.returncode == 0, (profile, result.stderr)


def test_monitoring_scrapes_every_process_on_its_metrics_port_and_rq_exporter_reads_the_service_redis(resolved):
    services = resolved["services"]
    assert {name for name, service in services.items() if service.get("profiles") == ["monitoring"]} == {
        "rq-exporter", "prometheus", "grafana"}
    assert services["rq-exporter"]["command"] == ["--redis-url", services["worker"]["environment"]["REDIS_URL"]]
    mounted = {volume.split(":")[1]: volume.split(":")[0] for service in ("prometheus", "grafana")
               for volume in services[service]["volumes"] if volume.startswith("/")}
    config = yaml.safe_load(Path(mounted["/etc/prometheus/prometheus.yml"]).read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name in LONG_RUNNING:
        (discovery,) = jobs[name]["dns_sd_configs"]
        assert discovery["names"] == [name]
        assert discovery["port"] == int(services[name]["environment"]["METRICS_PORT"]), name
    assert jobs["rq"]["static_configs"][0]["targets"] == ["rq-exporter:9726"]
    assert (Path(mounted["/var/lib/grafana/dashboards"]) / "captionbot.json").is_file()
    assert (Path(mounted["/etc/grafana/provisioning"]) / "datasources" / "prometheus.yml").is_file()


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
