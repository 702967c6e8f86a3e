"""The provisioned Grafana dashboard parses, queries only metrics the code exports (or rq-exporter's),
and shows what an operator needs: photos/s, latency per stage, failures, queue depth, 👍 share."""
from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

import bot.metrics  # noqa: F401 (registers the bot's metrics)
import worker.metrics  # noqa: F401 (registers the workers' metrics; no TensorFlow)

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "dashboards" / "captionbot.json"
DATASOURCE = REPO_ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
RQ_EXPORTER_METRICS = {"rq_jobs", "rq_workers"}  # mdawar/rq-exporter's gauges
METRIC_NAME = re.compile(r"\b((?:captionbot|rq)_[a-zA-Z0-9_]+)")


SERIES_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "info": ("_info",),
                   "histogram": ("_bucket", "_count", "_sum")}


def exported_series_names() -> set[str]:
    """Every series name the bot's and workers' registries expose, by each metric's type (a
    labelled metric has no samples until its first observation, so samples cannot tell)."""
    return {family.name + suffix for family in REGISTRY.collect() if family.name.startswith("captionbot_")
            for suffix in SERIES_SUFFIXES.get(family.type, ())}


def dashboard_queries() -> dict[str, list[str]]:
    panels = json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]
    return {panel["title"]: [target["expr"] for target in panel["targets"]] for panel in panels}


def test_every_metric_the_dashboard_queries_is_exported_by_the_code_or_rq_exporter():
    queried = {name for expressions in dashboard_queries().values() for expr in expressions
               for name in METRIC_NAME.findall(expr)}
    assert queried
    assert queried - RQ_EXPORTER_METRICS <= exported_series_names(), queried - RQ_EXPORTER_METRICS - exported_series_names()


def test_the_dashboard_shows_throughput_latency_per_stage_failures_queue_depth_and_thumbs_up_share():
    expressions = " ".join(expr for exprs in dashboard_queries().values() for expr in exprs)
    assert 'captionbot_worker_requests_total{outcome="done"}' in expressions
    assert "histogram_quantile(0.5, sum by (le, stage) (rate(captionbot_worker_stage_seconds_bucket" in expressions
    assert "histogram_quantile(0.95, sum by (le, stage) (rate(captionbot_worker_stage_seconds_bucket" in expressions
    assert "sum by (reason) (increase(captionbot_worker_failures_total" in expressions
    assert 'rq_jobs{status="queued"}' in expressions
    assert 'sum by (model_version) (increase(captionbot_bot_ratings_total{rating="up"}' in expressions


def test_every_panel_reads_the_provisioned_prometheus_datasource():
    uid = re.search(r"uid:\s*(\S+)", DATASOURCE.read_text()).group(1)
    panels = json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]
    assert {panel["datasource"]["uid"] for panel in panels} == {uid}
    assert all(target["datasource"]["uid"] == uid for panel in panels for target in panel["targets"])
