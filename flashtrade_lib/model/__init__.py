"""The model and what is done with it: the trader, training, checkpoints, step cost and
attribution (chapters 6–7), the cross-asset and order-book models (chapter 10).

Data arrives as windows from :mod:`flashtrade_lib.data`; forecasts leave for
:mod:`flashtrade_lib.trading`.
"""

from flashtrade_lib._exports import lazy_exports

__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "FlashAttentionTrader": "trader",
        "ModelConfig": "trader",
        "TrainConfig": "train",
        "train": "train",
        "predict": "train",
        "save_checkpoint": "checkpoints",
        "load_checkpoint": "checkpoints",
        "train_step": "step_cost",
        "measure_train_context": "step_cost",
        "attention_profile": "attribution",
        "occlusion_effect": "attribution",
        "CrossAssetTrader": "cross_asset",
    },
)
