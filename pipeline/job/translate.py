"""What a job's graph is made of, read before it runs: the facts a dry run prints and
the Dataflow graph tests check.

* how many transforms (leaves) and GroupByKeys;
* every stateful step, with whether its key coder is deterministic (Dataflow routes a
  key's state by its encoded bytes: a pickling coder may encode one key two ways, and an
  in-place update re-reads state under the new encoding) and whether it sets a timer
  (state without a timer is never cleared: it grows for as long as the job runs);
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam import coders, typehints
from apache_beam.pipeline import AppliedPTransform, PipelineVisitor
from apache_beam.runners.common import DoFnSignature


class _Facts(PipelineVisitor):
    def __init__(self) -> None:
        self.leaves = 0
        self.group_by_keys = 0
        self.stateful: list[dict[str, Any]] = []

    def visit_transform(self, node: AppliedPTransform) -> None:
        self.leaves += 1
        transform = node.transform
        if isinstance(transform, beam.GroupByKey):
            self.group_by_keys += 1
        if not isinstance(transform, beam.ParDo):
            return
        signature = DoFnSignature(transform.fn)
        if not signature.is_stateful_dofn():
            return
        self.stateful.append(
            {
                "step": node.full_label,
                "deterministic_key": _key_coder_deterministic(node),
                "timer": bool(signature.timer_methods),
            }
        )

    def enter_composite_transform(self, node: AppliedPTransform) -> None:
        if isinstance(node.transform, beam.GroupByKey):
            self.group_by_keys += 1


def _key_coder_deterministic(node: AppliedPTransform) -> bool:
    inputs = list(node.inputs)
    element_type = inputs[0].element_type if inputs else None
    if element_type is None or element_type == typehints.Any:
        return coders.registry.get_coder(typehints.Any).is_deterministic()
    coder = coders.registry.get_coder(element_type)
    return coder.is_kv_coder() and coder.key_coder().is_deterministic()


def graph_facts(pipeline: beam.Pipeline) -> dict[str, Any]:
    """The facts above for a built (not yet run) pipeline."""
    facts = _Facts()
    pipeline.visit(facts)
    return {
        "transforms": facts.leaves,
        "group_by_keys": facts.group_by_keys,
        "stateful_steps": facts.stateful,
    }
