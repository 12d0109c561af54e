"""The model zoo: the papers' architectures and baselines behind one registry.

Importing this package registers every model (`btc.models.resnesat`, `dsconv_cbam`,
`resnet34_improved`, `baselines`, …); see `registry.py` for the API and DESIGN.md for names.
"""

import importlib

from btc.models.registry import (
    ModelSpec,
    WeightsReport,
    create_model,
    get_spec,
    list_models,
    load_weights,
    register_model,
)

# Registration order = `list_models()` order: the papers' models, then the baselines.
for _module in ("resnesat", "dsconv_cbam", "resnet34_improved", "baselines", "small_cnn"):
    importlib.import_module(f"btc.models.{_module}")

__all__ = ["ModelSpec", "WeightsReport", "create_model", "get_spec", "list_models",
           "load_weights", "register_model"]
