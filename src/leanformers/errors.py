"""Exceptions raised by leanformers. Each message names the problem and the fix.

Every class derives from LeanformersError, so `except LeanformersError` catches whatever leanformers raises about a
file or an argument; each also keeps the built-in base (ValueError, OSError) that code written for Transformers
catches. docs/errors.md lists what raises each class and what to do about it.
"""

import contextlib


class LeanformersError(Exception):
    """Base of every leanformers error: a bad file, a bad argument, or something missing."""


class ConfigError(LeanformersError, ValueError):
    """A configuration is malformed or does not fit what was asked of it."""


class UnknownModelTypeError(ConfigError):
    """A `model_type` (or model class name) that leanformers does not implement."""


class ResourceNotFoundError(LeanformersError, OSError):
    """A folder, file or hub repo could not be found (locally, in the cache, or on the hub)."""


class CheckpointError(LeanformersError, ValueError):
    """A weights file is damaged, truncated, or does not fit the model (wrong shapes, unsafe paths)."""


class UnsafePathError(CheckpointError, ResourceNotFoundError):
    """A file name read from a checkpoint (an index, a config) would leave the checkpoint folder."""


class MissingCheckpointError(CheckpointError, ResourceNotFoundError):
    """No usable checkpoint to resume from: the folder does not exist, holds no weights, or output_dir has none.

    A ValueError, as Transformers raises in these cases, and a ResourceNotFoundError (OSError) like leanformers'
    other missing files."""


class QuantizationError(LeanformersError, ValueError):
    """A quantize= mode that does not exist, or what a quantized model cannot do (save, train, change device)."""


class TokenizerError(LeanformersError, ValueError):
    """A tokenizer was called with input or options it cannot honour, or its files are damaged."""


class ChatTemplateError(TokenizerError):
    """A chat template failed: a syntax error, a refused operation (sandbox), or a time or size limit reached.

    The instances raised are also instances of the matching jinja2 exception (TemplateError, SecurityError,
    TemplateSyntaxError), as Transformers raises those."""


def refuse_remote_code():
    raise ConfigError(
        "trust_remote_code=True is not supported: leanformers never runs code from a checkpoint. "
        "Use a model type that leanformers implements (see leanformers.auto.supported_model_types())."
    )


@contextlib.contextmanager
def engine_errors(make_error):
    """What an engine (numpy, torch, gguf, json, sentencepiece, tokenizers) raises inside the block is re-raised as
    `make_error(err)`, one of ours naming the file; leanformers' own errors pass through."""
    try:
        yield
    except LeanformersError:
        raise
    except BaseException as err:  # Exception, or a Rust panic of the tokenizers engine (a BaseException)
        if not isinstance(err, Exception) and type(err).__name__ != "PanicException":
            raise
        raise make_error(err) from None
