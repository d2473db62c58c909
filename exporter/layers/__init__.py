"""One unit per layer kind, each knowing its torch weights, its RTNeural JSON entry, its ModelT
type, how the generated header loads it, and its reference numpy step. The tables below are
the only place the kinds are listed."""

from exporter.layers import activation, batchnorm, conv1d, dense, gru, lstm, prelu
from exporter.layers.base import ExportError, count, out_size

UNITS = (dense, lstm, gru, conv1d, batchnorm, prelu, activation)
BY_JSON_TYPE = {t: unit for unit in UNITS for t in unit.JSON_TYPES}
BY_TORCH_TYPE = {t: unit for unit in UNITS for t in unit.TORCH_TYPES}

__all__ = ["BY_JSON_TYPE", "BY_TORCH_TYPE", "UNITS", "ExportError", "count", "out_size"]
