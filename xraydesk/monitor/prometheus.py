"""The results database in the Prometheus text format (``xraydesk listen --metrics-port``).

Why a collector that reads the database on each scrape rather than counters the node
increments: the database is the record (it survives restarts, and batch runs of other
processes write to it too), so what Prometheus sees always matches the worklist and the
batch runs, and a restarted node does not reset the counts.

Metrics (labels only ``model``, ``class``, ``code``, ``day``; never a patient, a file or
a UID):

- ``xraydesk_images_total{model}``: images with a result, all days;
- ``xraydesk_predictions_total{model,class}``: images per predicted class;
- ``xraydesk_indeterminate_total{model}``: images given no class (see ``daily``);
- ``xraydesk_warnings_total{model,code}``: images per warning code;
- ``xraydesk_confidence`` and ``xraydesk_latency_seconds`` (summaries, ``_sum`` and
  ``_count``): the probability of the predicted class, the seconds per image;
- ``xraydesk_daily_images{model,day}``, ``xraydesk_daily_predictions{model,class,day}``,
  ``xraydesk_daily_indeterminate{model,day}``, ``xraydesk_daily_warnings{model,code,day}``,
  ``xraydesk_daily_mean_confidence{model,day}``,
  ``xraydesk_daily_mean_latency_seconds{model,day}``: the same per UTC day, for the last
  ``DAYS`` days only (a bounded number of series);
- ``xraydesk_database_readable``: 1, or 0 when the database could not be read (the
  scrape still answers; the cause goes to the log).

The endpoint listens on loopback (127.0.0.1) unless another address is asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from xraydesk.errors import XRayDeskError
from xraydesk.monitor.daily import DayStats, MonitorError, daily_stats, merge, models_of

log = logging.getLogger(__name__)

DAYS = 7
DEFAULT_HOST = "127.0.0.1"


class DatabaseCollector:
    """A ``prometheus_client`` collector over ``results.sqlite``."""

    def __init__(self, db_path: Path, days: int = DAYS) -> None:
        self.db_path = Path(db_path)
        self.days = days
        self._last_error = ""

    def describe(self) -> list[Metric]:
        return []  # read on scrape: registering must not open the database

    def collect(self) -> Iterator[Metric]:
        readable = GaugeMetricFamily(
            "xraydesk_database_readable", "1 when the results database could be read"
        )
        try:
            days = daily_stats(self.db_path)
        except MonitorError as exc:  # a scrape answers, and says so; never a traceback
            if str(exc) != self._last_error:  # once per cause, not once a scrape
                log.warning("metrics: %s", exc)
                self._last_error = str(exc)
            readable.add_metric([], 0)
            yield readable
            return
        self._last_error = ""
        readable.add_metric([], 1)
        yield readable
        yield from total_metrics(days)
        first = (datetime.now(UTC).date() - timedelta(days=self.days - 1)).isoformat()
        yield from daily_metrics([d for d in days if d.day >= first])


def total_metrics(days: list[DayStats]) -> Iterator[Metric]:
    """The all-days counters and summaries, per model."""
    images = CounterMetricFamily("xraydesk_images", "Images with a result", labels=["model"])
    classes = CounterMetricFamily(
        "xraydesk_predictions", "Images per predicted class", labels=["model", "class"]
    )
    indeterminate = CounterMetricFamily(
        "xraydesk_indeterminate", "Images given no class", labels=["model"]
    )
    warnings = CounterMetricFamily(
        "xraydesk_warnings", "Images per warning code", labels=["model", "code"]
    )
    confidence = SummaryMetricFamily(
        "xraydesk_confidence", "Probability of the predicted class", labels=["model"]
    )
    latency = SummaryMetricFamily("xraydesk_latency_seconds", "Seconds per image", labels=["model"])
    for model in models_of(days):
        total = merge(days, model)
        images.add_metric([model], total.images)
        indeterminate.add_metric([model], total.indeterminate)
        for cls, n in sorted(total.classes.items()):
            classes.add_metric([model, cls], n)
        for code, n in sorted(total.warnings.items()):
            warnings.add_metric([model, code], n)
        confidence.add_metric([model], total.confidence_n, total.confidence_sum)
        latency.add_metric([model], total.latency_n, total.latency_sum)
    yield from (images, classes, indeterminate, warnings, confidence, latency)


def daily_metrics(days: list[DayStats]) -> Iterator[Metric]:
    """The per-day gauges."""
    labels = ["model", "day"]
    images = GaugeMetricFamily("xraydesk_daily_images", "Images with a result", labels=labels)
    classes = GaugeMetricFamily(
        "xraydesk_daily_predictions", "Images per predicted class", labels=["model", "class", "day"]
    )
    indeterminate = GaugeMetricFamily(
        "xraydesk_daily_indeterminate", "Images given no class", labels=labels
    )
    warnings = GaugeMetricFamily(
        "xraydesk_daily_warnings", "Images per warning code", labels=["model", "code", "day"]
    )
    confidence = GaugeMetricFamily(
        "xraydesk_daily_mean_confidence", "Mean probability of the predicted class", labels=labels
    )
    latency = GaugeMetricFamily(
        "xraydesk_daily_mean_latency_seconds", "Mean seconds per image", labels=labels
    )
    for d in days:
        images.add_metric([d.model, d.day], d.images)
        indeterminate.add_metric([d.model, d.day], d.indeterminate)
        for cls, n in sorted(d.classes.items()):
            classes.add_metric([d.model, cls, d.day], n)
        for code, n in sorted(d.warnings.items()):
            warnings.add_metric([d.model, code, d.day], n)
        if d.mean_confidence is not None:
            confidence.add_metric([d.model, d.day], d.mean_confidence)
        if d.mean_latency is not None:
            latency.add_metric([d.model, d.day], d.mean_latency)
    yield from (images, classes, indeterminate, warnings, confidence, latency)


@dataclass
class MetricsServer:
    """A running endpoint; ``stop()`` closes it."""

    host: str
    port: int
    _server: Any

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve_metrics(db_path: Path, port: int, host: str = DEFAULT_HOST) -> MetricsServer:
    """Serve the database's metrics on ``host:port`` (port 0 picks a free one) in a
    daemon thread. Loopback by default: exposing them to a network is the user's choice."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(db_path))  # type: ignore[arg-type]
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise XRayDeskError(
            f"cannot serve metrics on {host}:{port} ({exc.strerror or exc})"
        ) from exc
    return MetricsServer(host, int(server.server_address[1]), server)
