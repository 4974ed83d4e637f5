"""Small ONNX graphs built at test time that stand in for real pose models, layout for layout.

Each graph takes an image tensor and emits tensors in one family's output layout. "Constant" graphs
consume the input (``0 · ReduceSum(input)`` is added) so onnxruntime runs a real graph over the real
pre-processed crop, and emit known keypoints; the "identity heatmap" graph turns the crop's first
channel into the heatmap, so the peak sits wherever a bright pixel landed in the crop.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def constant_outputs_model(path: Path, input_shape: list[int], outputs: dict[str, np.ndarray],
                           input_name: str = "input") -> Path:
    """A graph whose outputs are the given arrays (plus 0 × the sum of the input)."""
    nodes = [
        helper.make_node("ReduceSum", [input_name], ["input_sum"], keepdims=0),
        helper.make_node("Mul", ["input_sum", "zero"], ["input_zero"]),
    ]
    inits = [numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero")]
    graph_outputs = []
    for name, array in outputs.items():
        array = np.asarray(array, dtype=np.float32)
        inits.append(numpy_helper.from_array(array, f"{name}_const"))
        nodes.append(helper.make_node("Add", [f"{name}_const", "input_zero"], [name]))
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(array.shape)))
    graph = helper.make_graph(nodes, "pose_stub",
                              [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_shape)],
                              graph_outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return _save(model, path)


def identity_heatmap_model(path: Path, size: int) -> Path:
    """``[1, 3, size, size]`` in, the first channel out as a one-keypoint heatmap ``[1, 1, size, size]``."""
    nodes = [helper.make_node("Slice", ["input", "starts", "ends", "axes"], ["heatmaps"])]
    inits = [numpy_helper.from_array(np.array([0], dtype=np.int64), "starts"),
             numpy_helper.from_array(np.array([1], dtype=np.int64), "ends"),
             numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")]
    graph = helper.make_graph(nodes, "heatmap_identity",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
                              [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [1, 1, size, size])],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return _save(model, path)


def write_manifest(path: Path, weights: Path, spec: dict[str, Any]) -> Path:
    """A pose manifest next to ``weights``, pinned to its sha256, as a user would write it."""
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    manifest = {"kind": "pose", "files": [{"name": weights.name, "sha256": [digest]}], **spec}
    path.write_text(json.dumps(manifest, indent=2))
    return path


DOG_POSE_24 = [
    "front_left_paw", "front_left_knee", "front_left_elbow", "rear_left_paw", "rear_left_knee", "rear_left_elbow",
    "front_right_paw", "front_right_knee", "front_right_elbow", "rear_right_paw", "rear_right_knee",
    "rear_right_elbow", "tail_start", "tail_end", "left_ear_base", "right_ear_base", "nose", "chin",
    "left_ear_tip", "right_ear_tip", "left_eye", "right_eye", "withers", "throat",
]

AP10K_17 = [
    "L_Eye", "R_Eye", "Nose", "Neck", "Root of tail", "L_Shoulder", "L_Elbow", "L_F_Paw", "R_Shoulder",
    "R_Elbow", "R_F_Paw", "L_Hip", "L_Knee", "L_B_Paw", "R_Hip", "R_Knee", "R_B_Paw",
]
AP10K_SKELETON = [[0, 1], [0, 2], [1, 2], [2, 3], [3, 4], [3, 5], [5, 6], [6, 7], [3, 8], [8, 9], [9, 10],
                  [4, 11], [11, 12], [12, 13], [4, 14], [14, 15], [15, 16]]
