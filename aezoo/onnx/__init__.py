"""ONNX export of encoders and decoders, validated against onnxruntime, and running exports."""

from aezoo.onnx.exporter import export
from aezoo.onnx.runtime import MANIFEST_FILE, ExportedModel, OnnxPart, load_export
from aezoo.onnx.verify import verify

__all__ = ["MANIFEST_FILE", "ExportedModel", "OnnxPart", "export", "load_export", "verify"]
