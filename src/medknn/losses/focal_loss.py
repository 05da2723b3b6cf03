"""Multi-class softmax focal loss (Lin et al., ICCV 2017): ``-(1 - p_t)^γ log p_t``.

No installed library fits: ``torchvision.ops.sigmoid_focal_loss`` is the binary (sigmoid) form;
timm's ``AsymmetricLossSingleLabel(gamma_neg=0, eps=0)`` is the unweighted case but has no class
weights and a NaN gradient for γ < 1 once p_t rounds to 1; MONAI's ``FocalLoss`` is not
installed and too large a dependency for one formula.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medknn.errors import ConfigError
from medknn.losses._classification_checks import check_class_weight, check_logits_and_labels


class FocalLoss(nn.Module):
    """Focal loss on logits, averaged over the batch like :func:`F.cross_entropy`.

    ``gamma`` (γ ≥ 0) down-weights well-classified samples; γ = 0 is cross entropy. ``weight``
    (one value per class, the paper's α) weights each sample by its class, and the mean is then
    taken over the summed weights, exactly as ``F.cross_entropy(..., weight=weight)`` does.
    """

    def __init__(self, gamma: float = 2.0, weight: Tensor | None = None) -> None:
        super().__init__()
        is_number = isinstance(gamma, int | float) and not isinstance(gamma, bool)
        if not (is_number and math.isfinite(gamma) and gamma >= 0):
            raise ConfigError(
                f"FocalLoss gamma={gamma!r} is invalid; pass a finite number >= 0 (0 is cross "
                "entropy, the paper's default is 2)."
            )
        self.gamma = float(gamma)
        self.register_buffer("weight", check_class_weight(weight, "FocalLoss"), persistent=False)

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        check_logits_and_labels(logits, labels, self.weight, "FocalLoss")
        log_p = F.log_softmax(logits, dim=1)
        if self.gamma > 0:
            # 1 - p by expm1 keeps precision as p → 1; the floor keeps (1 - p)^(γ-1) finite for
            # γ < 1 when p rounds to exactly 1, so the gradient stays finite (it is ~0 there).
            one_minus_p = (-torch.expm1(log_p)).clamp(min=torch.finfo(log_p.dtype).tiny)
            log_p = one_minus_p.pow(self.gamma) * log_p
        # nll_loss picks -log_p of the true class and applies weight and mean as cross_entropy.
        return F.nll_loss(log_p, labels, weight=self.weight)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}" + (", weighted" if self.weight is not None else "")
