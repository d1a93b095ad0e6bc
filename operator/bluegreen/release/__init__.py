"""The release state machine, pure: `plan(app, observed)` decides one step of one app.

context    the pass: the app, the observed world, and the plan being built
machine    the phase -> step table and the entry point
phases     one function per phase
lifecycle  starting, finishing and rolling back a release
requests   promote / abort / retry: the rules (the kubectl plugin reads them too)
gates      analysis windows before and after the switch
canary     canary steps and the canary Ingress
upkeep     what holds in every phase: Services, scale, delayed scale-downs
status     conditions and the derived status fields
pins       image digests (spec.image.resolveDigest)
"""

from bluegreen.release.machine import plan

__all__ = ["plan"]
