"""Export trained models and run them fast on a CPU.

    source = source_from_run("runs/kd-student")          # or Source.from_model(...)
    path = export_model(source, "onnx-int8-static", "student.onnx")   # + student.onnx.json
    predict = load_predictor(path, threads=2)
    logits = predict(images)                              # float (B, 3, S, S) in [0, 1]

Formats (`FORMATS`): onnx, onnx-int8-dynamic, onnx-int8-static, torchscript,
torch-int8-dynamic. `predictor.eager` and `predictor.compiled` run a model in-process
without a file. onnx, onnxscript and onnxruntime are optional (`pip install
'dermkd[export]'`) and imported only by the formats that use them.
"""

from dermkd.export.formats import FORMATS, ExportFormat, export_model, load_predictor
from dermkd.export.predictor import Predictor
from dermkd.export.source import Source, source_from_run

__all__ = ["FORMATS", "ExportFormat", "Predictor", "Source", "export_model", "load_predictor", "source_from_run"]
