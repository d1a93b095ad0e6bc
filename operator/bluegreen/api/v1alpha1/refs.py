"""How an app names analysis templates: `templates` and `args`, as Argo Rollouts writes them.

    analysis:
      prePromotionAnalysis:
        templates:
          - templateName: error-ratio
            clusterScope: true          # a ClusterAnalysisTemplate; default: an
                                        # AnalysisTemplate in the app's namespace
        args:
          - {name: threshold, value: "0.01"}

The same object is `postPromotionAnalysis`, and `analysis` of a canary step. The templates
themselves are `bluegreen.api.v1alpha1.templates`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from bluegreen.api.v1alpha1.base import LIST_MAP, Model, unique_names

ARG_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
"""An arg's name, as `{{args.<name>}}` writes it."""
TEMPLATE_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
MAX_ARG_VALUE = 1024


class TemplateRef(Model):
    template_name: Annotated[
        str,
        Field(
            min_length=1,
            max_length=253,
            pattern=TEMPLATE_NAME_PATTERN,
            description="The name of an AnalysisTemplate in the app's namespace, or of a "
            "ClusterAnalysisTemplate with clusterScope.",
        ),
    ]
    cluster_scope: bool = Field(
        default=False,
        description="true: a ClusterAnalysisTemplate (cluster-scoped, shared by every "
        "namespace); false: an AnalysisTemplate of the app's namespace.",
    )


class ArgValue(Model):
    name: Annotated[str, Field(min_length=1, max_length=63, pattern=ARG_NAME_PATTERN)]
    value: Annotated[
        str,
        Field(
            max_length=MAX_ARG_VALUE,
            description="Replaces {{args.<name>}} in the templates' metrics. It may use "
            "{{namespace}} {{name}} {{color}} {{revision}}, filled in when a sample is taken.",
        ),
    ]


class TemplateAnalysis(Model):
    """Metrics from analysis templates, with the args they need. They are judged in the
    same window as the inline metrics beside them; the templates' metrics are resolved and
    kept in status.analysis when the window opens."""

    templates: Annotated[
        list[TemplateRef],
        Field(min_length=1, max_length=10, description="The templates, in order."),
    ]
    args: Annotated[
        list[ArgValue],
        Field(
            max_length=20,
            json_schema_extra=LIST_MAP,
            description="Values of the templates' args, shared by every template listed; "
            "an arg not given takes the template's default value.",
        ),
    ] = Field(default_factory=list)

    @field_validator("args")
    @classmethod
    def _unique_names(cls, args: list[ArgValue]) -> list[ArgValue]:
        return unique_names(args, "arg names must be unique")
