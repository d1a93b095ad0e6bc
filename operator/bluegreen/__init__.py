"""bluegreen: a Kubernetes operator for safe, automatic blue-green releases."""
