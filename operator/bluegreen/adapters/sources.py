"""The operator's MetricsSource (`bluegreen.core.ports`): each kind of metric to the adapter
that reads it. A new provider is one adapter module and one method here.

    sources = AnalysisSources(HttpMetricsSource(timeout=5, policy=policy),
                              CloudWatchProvider(timeout_seconds=5))
    sources.query("http://prometheus.monitoring.svc:9090", "sum(up)")   # Prometheus
    sources.probe("http://shop-preview.shop.svc/health")                 # web check
    sources.cloudwatch(request)                                          # CloudWatch

Job metrics need no adapter here: their Jobs are Kubernetes objects the release starts and
the watch caches follow.
"""

from __future__ import annotations

from bluegreen.adapters.cloudwatch import CloudWatchProvider
from bluegreen.adapters.prometheus import HttpMetricsSource
from bluegreen.core.analysis import QueryResult
from bluegreen.core.cloudwatch import CloudWatchRequest


class AnalysisSources:
    def __init__(self, http: HttpMetricsSource, cloudwatch: CloudWatchProvider) -> None:
        self.http = http
        self.cloudwatch_provider = cloudwatch

    def query(self, address: str, promql: str) -> QueryResult:
        return self.http.query(address, promql)

    def probe(self, url: str) -> QueryResult:
        return self.http.probe(url)

    def refusal(self, prometheus: str | None, url: str | None) -> str | None:
        return self.http.refusal(prometheus, url)

    def cloudwatch(self, request: CloudWatchRequest) -> QueryResult:
        return self.cloudwatch_provider.get_metric_data(request)
