"""Text generation: GenerationConfig, logits processors, stopping criteria, decoding strategies, streamers.

Names resolve on first use so that reading a generation config does not import torch.
"""

_EXPORTS = {
    "GenerationConfig": "config", "GenerationMode": "config", "CompileConfig": "compiled",
    "GenerationMixin": "utils",
    "GenerateDecoderOnlyOutput": "outputs", "GenerateEncoderDecoderOutput": "outputs",
    "GenerateBeamDecoderOnlyOutput": "outputs", "GenerateBeamEncoderDecoderOutput": "outputs",
    "BaseStreamer": "streamers", "TextStreamer": "streamers", "TextIteratorStreamer": "streamers",
    "AsyncTextIteratorStreamer": "streamers",
    "StoppingCriteria": "stopping_criteria", "StoppingCriteriaList": "stopping_criteria",
    "MaxLengthCriteria": "stopping_criteria", "MaxTimeCriteria": "stopping_criteria",
    "EosTokenCriteria": "stopping_criteria", "StopStringCriteria": "stopping_criteria",
    "Constraint": "beam_constraints", "PhrasalConstraint": "beam_constraints",
    "DisjunctiveConstraint": "beam_constraints", "ConstraintListState": "beam_constraints",
    "BeamHypotheses": "beam_search",
}
_PROCESSORS = (
    "LogitsProcessor", "LogitsWarper", "LogitsProcessorList", "MinLengthLogitsProcessor",
    "MinNewTokensLengthLogitsProcessor", "TemperatureLogitsWarper", "RepetitionPenaltyLogitsProcessor",
    "EncoderRepetitionPenaltyLogitsProcessor", "TopPLogitsWarper", "TopKLogitsWarper", "MinPLogitsWarper",
    "TypicalLogitsWarper", "EpsilonLogitsWarper", "EtaLogitsWarper", "NoRepeatNGramLogitsProcessor",
    "EncoderNoRepeatNGramLogitsProcessor", "SequenceBiasLogitsProcessor", "NoBadWordsLogitsProcessor",
    "PrefixConstrainedLogitsProcessor", "ForcedBOSTokenLogitsProcessor", "ForcedEOSTokenLogitsProcessor",
    "InfNanRemoveLogitsProcessor", "ExponentialDecayLengthPenalty", "LogitNormalization",
    "SuppressTokensAtBeginLogitsProcessor", "SuppressTokensLogitsProcessor", "HammingDiversityLogitsProcessor",
)
_EXPORTS.update({name: "logits_process" for name in _PROCESSORS})
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    import importlib

    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'leanformers.generation' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
