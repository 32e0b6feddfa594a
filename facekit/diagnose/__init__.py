"""The training doctor: measure why a Keras classifier sits at chance, on any model.

    from facekit.diagnose import doctor, ChanceAlarm
    print(doctor(model, (x, y)))                          # checks + ranked suggestions
    model.fit(x, y, callbacks=[ChanceAlarm(patience=3)])  # speaks up when the loss sits at ln C

Modules: `probes` (layer statistics, logits, samples) <- `checks` (one measurement each) <-
`doctor` (runs the checks, ranks the fixes; with ``trials=True`` it first tries each fix on a
fresh copy, `trials`); `callbacks` (`ActivationStats`, `GradientStats`,
`ChanceAlarm`) read through `probes` too; `batchnorm` (training mode vs inference mode:
`mode_gap`, `recalibrate_batchnorm`, `PreciseBatchNorm`, `BatchNormWatch`) <- `held_out` (the
doctor's "inference mode" and "held-out accuracy" checks). The one-change-at-a-time experiment is
`facekit.ablation`.
"""

from facekit.diagnose.batchnorm import (
    BatchNormWatch,
    ModeGap,
    PreciseBatchNorm,
    Recalibration,
    batchnorm_layers,
    mode_gap,
    recalibrate_batchnorm,
)
from facekit.diagnose.callbacks import ActivationStats, ChanceAlarm, ChanceWatch, GradientStats
from facekit.diagnose.checks import (
    Check,
    activation_report,
    gradient_report,
    input_baseline,
    loss_at_init,
    lr_sweep,
    output_sensitivity,
    overfit_one_batch,
    signal_gains,
)
from facekit.diagnose.doctor import Report, doctor
from facekit.diagnose.held_out import held_out_check, mode_check
from facekit.diagnose.probes import LayerStats, activation_layers, layer_stats
from facekit.diagnose.trials import Trial, try_fixes

__all__ = ["Check", "LayerStats", "Report", "loss_at_init", "output_sensitivity", "input_baseline",
           "activation_report", "gradient_report", "overfit_one_batch", "lr_sweep", "doctor",
           "activation_layers", "layer_stats", "signal_gains", "ActivationStats", "GradientStats",
           "ChanceAlarm", "ChanceWatch", "Trial", "try_fixes", "recalibrate_batchnorm", "PreciseBatchNorm",
           "BatchNormWatch",
           "mode_gap", "ModeGap", "Recalibration", "batchnorm_layers", "mode_check",
           "held_out_check"]
