"""The only code that talks to the world: the Kubernetes API (writes, watches and caches),
Prometheus and web checks, Amazon ECR, and the clock. Each implements a port of
`bluegreen.core.ports`."""
