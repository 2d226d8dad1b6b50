"""Exceptions raised by leanformers. Each message names the problem and the fix."""


class ConfigError(ValueError):
    """A configuration is malformed or does not fit what was asked of it."""


class UnknownModelTypeError(ConfigError):
    """A `model_type` (or model class name) that leanformers does not implement."""


class ResourceNotFoundError(OSError):
    """A folder, file or hub repo could not be found (locally, in the cache, or on the hub)."""


class CheckpointError(ValueError):
    """A weights file is damaged, truncated, or does not fit the model (wrong shapes, unsafe paths)."""


class UnsafePathError(CheckpointError, ResourceNotFoundError):
    """A file name read from a checkpoint (an index, a config) would leave the checkpoint folder."""


class MissingCheckpointError(CheckpointError, ResourceNotFoundError):
    """No usable checkpoint to resume from: the folder does not exist, holds no weights, or output_dir has none.

    A ValueError, as Transformers raises in these cases, and a ResourceNotFoundError (OSError) like leanformers'
    other missing files."""


class TokenizerError(ValueError):
    """A tokenizer was called with input or options it cannot honour."""


def refuse_remote_code():
    raise ConfigError(
        "trust_remote_code=True is not supported: leanformers never runs code from a checkpoint. "
        "Use a model type that leanformers implements (see leanformers.auto.supported_model_types())."
    )
