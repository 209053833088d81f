"""The field names the contract names on each topic that takes messages: what a rejection
keeps the values of (a value under any other name may be personal data the producer put
there by mistake, and the contract promises it is not stored).

Each name maps to the names its nested object's fields have, empty for a plain value, over
every message type of the topic together.
"""

from __future__ import annotations

from typing import Any, TypeAlias, get_args

from pydantic import BaseModel

from contracts.v1 import topics
from contracts.v1.inbound import ActivityMessage, DischargeReadyMessage, EmergencyBedMessage
from contracts.v1.outbound import Command

FieldTree: TypeAlias = dict[str, "FieldTree"]


def field_tree(message: Any) -> FieldTree:
    """The names the models in `message` (a model, or a union of them, annotated or not) give
    their fields, each with the names of its nested model's fields."""
    tree: FieldTree = {}
    for model in _models_in(message):
        for name, field in model.model_fields.items():
            _merge(tree.setdefault(name, {}), field_tree(field.annotation))
    return tree


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    # A union, an optional value, a list or `Annotated` (whose metadata holds no models).
    return [model for argument in get_args(annotation) for model in _models_in(argument)]


def _merge(into: FieldTree, other: FieldTree) -> None:
    for name, names in other.items():
        _merge(into.setdefault(name, {}), names)


NAMED_FIELDS: dict[str, FieldTree] = {
    topics.DISCHARGE_READY: field_tree(DischargeReadyMessage),
    topics.EMERGENCY_BEDS: field_tree(EmergencyBedMessage),
    topics.ACTIVITY: field_tree(ActivityMessage),
    topics.COMMANDS: field_tree(Command),
}
