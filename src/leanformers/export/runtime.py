"""ONNX Runtime sessions, for the exporter's check and the ORT-backed models."""

from __future__ import annotations


def session(path: str, options=None, providers=None):
    """An onnxruntime.InferenceSession of `path` (CPU unless `providers` says otherwise)."""
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("Running ONNX models needs onnxruntime: pip install 'leanformers[onnx]'.") from None
    return onnxruntime.InferenceSession(str(path), sess_options=options,
                                        providers=providers or ["CPUExecutionProvider"])
