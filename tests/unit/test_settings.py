"""Operator settings from BLUEGREEN_* environment variables, and the defaults they give
every app."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bluegreen.runtime.reconcile import AppDefaults, with_defaults
from bluegreen.runtime.settings import Settings
from tests.unit.factories import make_app


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", {}),
        ("release=monitoring", {"release": "monitoring"}),
        (" release = monitoring , team=platform ", {"release": "monitoring", "team": "platform"}),
        ("empty=", {"empty": ""}),
    ],
)
def test_service_monitor_labels_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: dict[str, str]
) -> None:
    monkeypatch.setenv("BLUEGREEN_SERVICE_MONITOR_LABELS", raw)
    assert Settings().service_monitor_labels == expected


@pytest.mark.parametrize("raw", ["release", "=monitoring"])
def test_a_label_that_is_not_key_value_is_refused(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("BLUEGREEN_SERVICE_MONITOR_LABELS", raw)
    with pytest.raises(ValidationError, match="is not key=value"):
        Settings()


def test_the_apps_own_service_monitor_labels_win_over_the_defaults() -> None:
    app = make_app()
    own = app.spec.monitoring.service_monitor.model_copy(update={"labels": {"team": "shop"}})
    app = app.model_copy(
        update={
            "spec": app.spec.model_copy(
                update={
                    "monitoring": app.spec.monitoring.model_copy(update={"service_monitor": own})
                }
            )
        }
    )
    defaults = AppDefaults(service_monitor_labels={"release": "monitoring", "team": "platform"})
    got = with_defaults(app, defaults).spec.monitoring.service_monitor.labels
    assert got == {"release": "monitoring", "team": "shop"}
    assert with_defaults(app, AppDefaults()) is app


def test_notification_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().notifications_allowed == ("hooks.slack.com", "*.svc", "*.svc.cluster.local")
    monkeypatch.setenv("BLUEGREEN_NOTIFICATIONS_FILE", "/etc/bluegreen/notifications/n.yaml")
    monkeypatch.setenv("BLUEGREEN_NOTIFICATIONS_ALLOWED", " chat.example.com , *.svc ")
    monkeypatch.setenv("BLUEGREEN_NOTIFICATIONS_ATTEMPTS", "6")
    s = Settings()
    assert s.notifications_file == "/etc/bluegreen/notifications/n.yaml"
    assert s.notifications_allowed == ("chat.example.com", "*.svc")
    assert s.notifications_attempts == 6


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BLUEGREEN_NOTIFICATIONS_ATTEMPTS", "0"),
        ("BLUEGREEN_NOTIFICATIONS_TIMEOUT_SECONDS", "0"),
        ("BLUEGREEN_NOTIFICATIONS_QUEUE_SIZE", "0"),
    ],
)
def test_notification_settings_that_make_no_sense_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()
