"""Linear classification head with dropout, as in the official AFFNet."""
import torch
import torch.nn as nn
from mmpretrain.models.heads import LinearClsHead

from mmaff.registry import MODELS


@MODELS.register_module()
class DropoutLinearClsHead(LinearClsHead):
    """:class:`mmpretrain.models.heads.LinearClsHead` with dropout before the
    fully connected layer.

    The official AFFNet classifier is global pooling, ``Dropout(0.1)`` and a
    linear layer; with mmpretrain's ``GlobalAveragePooling`` neck this head
    completes it. Dropout is applied in :meth:`pre_logits`, so it is active
    only in training mode, and has no parameters: the state dict keys stay
    ``head.fc.weight`` / ``head.fc.bias``, as for ``LinearClsHead``.

    Args:
        num_classes (int): Number of categories.
        in_channels (int): Channels of the input feature.
        dropout_rate (float): Probability of zeroing a feature before the
            fc layer, in ``[0, 1)``; 0 disables dropout. Defaults to 0.1.
        **kwargs: Other arguments of :class:`LinearClsHead` (``loss``,
            ``topk``, ``cal_acc``, ``init_cfg``).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 dropout_rate: float = 0.1,
                 **kwargs) -> None:
        # checked first: the parent builds the loss from the registry of the
        # current default scope, which may fail for unrelated reasons
        if not 0 <= dropout_rate < 1:
            raise ValueError(
                f'dropout_rate must be in [0, 1), got {dropout_rate}')
        super().__init__(
            num_classes=num_classes, in_channels=in_channels, **kwargs)
        self.dropout_rate = dropout_rate
        self.dropout = nn.Dropout(p=dropout_rate) if dropout_rate > 0 \
            else nn.Identity()

    def pre_logits(self, feats: tuple[torch.Tensor]) -> torch.Tensor:
        """Take the last feature and apply dropout (training mode only).

        Args:
            feats (tuple[torch.Tensor]): Features of the neck, each
                ``(N, in_channels)``; only the last is used.

        Returns:
            torch.Tensor: ``(N, in_channels)`` features for the fc layer.
        """
        return self.dropout(feats[-1])
