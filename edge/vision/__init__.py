"""Vision stages: ONNX session set-up, dog detection and pose."""
