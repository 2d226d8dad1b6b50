"""Exceptions raised by pipelines. They subclass the built-in types transformers raises in the same places
(ValueError, KeyError), so code that catches those keeps working."""

from __future__ import annotations

from ..errors import ConfigError


class PipelineException(ValueError):
    """A pipeline cannot run on the input it was given (transformers' name, with `task` and `model` attributes)."""

    def __init__(self, task: str, model: str, reason: str):
        super().__init__(reason)
        self.task = task
        self.model = model


class PipelineInputError(ValueError):
    """The input of a pipeline call is missing, empty or malformed; the message says what to pass instead."""


class UnknownTaskError(KeyError):
    """`pipeline()` was given a task it does not know; the message lists the known ones."""

    def __str__(self):  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


class TaskModelMismatchError(ConfigError):
    """The model's head cannot serve the task (e.g. a bare encoder for text-classification)."""
