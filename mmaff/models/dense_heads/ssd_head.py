from mmdet.models.dense_heads import SSDHead

from mmaff.registry import MODELS


@MODELS.register_module()
class SSDHeadWithLossCls(SSDHead):
    """mmdet's ``SSDHead`` with the ``loss_cls`` attribute that mmdet's
    ``BaseDenseHead.predict_by_feat`` reads.

    ``SSDHead`` computes its classification loss itself and never sets
    ``loss_cls``, so in mmdet 3.3.0 every SSD validation and test step fails
    with ``AttributeError: 'SSDHead' object has no attribute 'loss_cls'``
    (fix F1 of :mod:`mmaff.compat`; mmdetection#11063, #11305). ``None``
    makes ``getattr(self.loss_cls, 'custom_cls_channels', False)`` False:
    the plain-softmax scores SSD has. On an mmdet release that sets
    ``self.loss_cls`` the instance attribute takes precedence over this one,
    so the class is harmless there.

    The SSDLite configs in ``configs/detection`` use it as
    ``bbox_head=dict(type='mmaff.SSDHeadWithLossCls', ...)``; it takes
    ``SSDHead``'s arguments unchanged. Unlike a patch of ``SSDHead`` it
    changes nothing for code that does not ask for it.
    """

    loss_cls = None
