"""Exporting models: ONNX files that ONNX Runtime runs (`export_onnx`, the ORTModel classes the pipelines use) and
the TorchScript/torch.export conventions of the models themselves (`torchscript=True`, tuple outputs)."""

from __future__ import annotations

from .onnx import ONNX_TASKS, export_onnx, validate_onnx
from .ort import ORTModel, ORTModelForCausalLM, ORTModelForSeq2SeqLM, is_onnx_folder, load_ort_model
from .static import StaticCacheStep

__all__ = ["ONNX_TASKS", "ORTModel", "ORTModelForCausalLM", "ORTModelForSeq2SeqLM", "StaticCacheStep", "export_onnx",
           "is_onnx_folder", "load_ort_model", "validate_onnx"]
