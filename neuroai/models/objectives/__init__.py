"""Self-supervised objectives: wrappers that take an encoder and define a pretext loss."""

from neuroai.models.objectives.base import (
    Objective,
    create_objective,
    list_objectives,
    register_objective,
)

__all__ = ["Objective", "create_objective", "list_objectives", "register_objective"]
