"""bluegreen demo app: a page in its colour, a health check, Prometheus metrics and faults
that can be switched on, to show and test blue-green releases."""

from bluegreen_demo.faults import FaultInjector, FaultSettings
from bluegreen_demo.server import AppConfig, DemoServer, main, render_page, serve

__all__ = [
    "AppConfig",
    "DemoServer",
    "FaultInjector",
    "FaultSettings",
    "main",
    "render_page",
    "serve",
]
