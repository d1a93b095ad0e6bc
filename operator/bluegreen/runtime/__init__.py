"""The running operator: kopf handlers (the only kopf code), the reconcile pass that joins
the observed world, the release machine and the adapters, the scheduler that wakes apps,
the operator's own metrics and its settings.

    kopf run -m bluegreen.runtime.handlers --all-namespaces
"""
