"""Pure building blocks of the operator: names and labels, revisions, the objects it owns
(rendered from the app alone), analysis verdicts, the observed snapshot, the plan's actions
and the ports adapters implement. No I/O, no clock reads, no kopf, no kubernetes."""
