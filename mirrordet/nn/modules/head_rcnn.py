"""RCNNHead: a two-stage Faster R-CNN head (RPN + RoIAlign box head with class-specific regression).

As torchvision's RPN and RoIHeads, the head owns its targets in training (``needs_targets``): it
matches and samples anchors for the RPN and proposals (plus the ground truth) for the RoI stage,
runs the RoI stage on the sampled RoIs, and returns everything the loss
(:class:`mirrordet.losses.rcnn.RCNNLoss`) scores. In eval it returns per-class boxes and scores of
its proposals, which :meth:`RCNNHead.postprocess` turns into detections.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping

import torch
from torch import nn
from torchvision.ops import MultiScaleRoIAlign, box_iou, clip_boxes_to_image, remove_small_boxes

from mirrordet.nn.head import DetectionHead
from mirrordet.nn.modules.base import BuildContext, check_args, flat_channels
from mirrordet.nn.modules.cascade_rpn import build_rpn, region_targets
from mirrordet.ops.anchor_boxes import ROI_WEIGHTS, decode_boxes, encode_boxes, match_anchors, sample_balanced
from mirrordet.ops.detections import Detections
from mirrordet.ops.nms import NMSSettings, select_and_suppress
from mirrordet.ops.targets import image_targets
from mirrordet.registry import MODULES
from mirrordet.utils.errors import MirrordetError, ModelConfigError



RPN_KINDS = ("standard", "conv2", "cascade", "cascade-simple")


def box_head(c: int, fc_dim: int | list) -> tuple[nn.Sequential, int]:
    """The RoI box head and its output width, from ``fc_dim``.

    ``1024``: two fc layers of that width (torchvision's TwoMLPHead). ``[[256, 256, 256, 256], [1024]]``: 3x3
    convs without bias, each with BatchNorm and ReLU, then fc layers (torchvision's FastRCNNConvFCHead of the
    ``_v2`` models). Input: RoI features [R, c, 7, 7]; output [R, width].
    """
    if isinstance(fc_dim, int):
        return nn.Sequential(nn.Flatten(), nn.Linear(c * 49, fc_dim), nn.ReLU(inplace=True),
                             nn.Linear(fc_dim, fc_dim), nn.ReLU(inplace=True)), fc_dim
    convs, fcs = fc_dim
    layers: list[nn.Module] = []
    prev = c
    for width in convs:
        layers.append(nn.Sequential(nn.Conv2d(prev, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                    nn.ReLU(inplace=True)))
        prev = width
    layers.append(nn.Flatten())
    prev *= 49
    for width in fcs:
        layers += [nn.Linear(prev, width), nn.ReLU(inplace=True)]
        prev = width
    return nn.Sequential(*layers), prev


@MODULES.register()
class RCNNHead(DetectionHead):
    """Faster R-CNN head over L levels of equal width (e.g. FPN P2-P6).

    Args:
        nc: object classes (the classifier adds a background class 0). ch: channels per level.
        sizes: RPN anchor size per level in pixels (None: 8 x stride, i.e. 32..512 on P2-P6).
        ratios: RPN anchor h / w ratios. roi_levels: finest levels RoIAlign reads (None: all).
        fc_dim: width of the two fc layers of the box head, or ``[[conv widths], [fc widths]]`` (a conv + BatchNorm
            box head, as torchvision's ``_v2`` models: :func:`box_head`). post_nms_topk: RPN proposals per image
            kept after NMS (train, eval).
        ia: Inverted Attention in training, ``[cells, rois]`` (None: off): for the fraction ``rois`` of the
            positive RoIs that the classifier finds hardest (lowest probability of their class), the fraction
            ``cells`` of the 7x7 RoI cells with the highest Grad-CAM attention is zeroed in every channel before
            the RoI head runs, so it must learn from the object's other parts. Eval is untouched.
        rpn: ``standard``; ``conv2`` (two 3x3 convs before the outputs, torchvision's ``_v2`` RPN head); ``cascade`` (Cascade RPN: one anchor per location refined in two stages, the second
            with adaptive convolution; :mod:`mirrordet.nn.modules.cascade_rpn`) or ``cascade-simple`` (the seed's
            variant: two stacked 3x3 stages, adaptive convolution off). ``sizes``/``ratios`` keep their meaning
            (a cascade uses one square anchor of the level's size).

    Forward:
        training (``forward(x, targets)``): [objectness [B, A, 1] logits, rpn deltas [B, A, 4],
            per image (sampled anchors [k], objectness targets [k], positive anchors [p], box targets
            [p, 4]), RoI logits [R, nc + 1], RoI deltas [R, nc + 1, 4], per image (RoI labels [r_i],
            0 = background, box targets [r_i, 4], ground-truth index of each positive [p_i])]; R = sum r_i
            sampled RoIs.
        eval: [B, R, nc, 5]: per proposal and class the regressed box (x1, y1, x2, y2 pixels) and the
            softmax class probability (0 for padding rows); see :meth:`postprocess`.
    """

    yaml_example = (-1, ["nc", None, [0.5, 1.0, 2.0], None, 64, [64, 32]])  # (from, args) of a test row

    loss = "rcnn"
    train_outputs = ("objectness", "rpn_deltas", "rpn_samples", "roi_logits", "roi_deltas", "roi_samples")
    traceable = False  # the number of proposals depends on the data
    needs_targets = True
    # target assignment (torchvision's Faster R-CNN defaults): RPN IoU (fg, bg), anchors sampled per image
    # and their positive fraction; RoI foreground IoU, RoIs sampled per image and their positive fraction
    rpn_batch, rpn_pos = 256, 0.5  # (the matching thresholds are the RPN's: iou_thresholds)
    roi_iou, roi_batch, roi_pos = 0.5, 512, 0.25

    def __init__(self, nc: int, ch: tuple[int, ...], sizes: list[float] | None = None,
                 ratios: list[float] = (0.5, 1.0, 2.0), roi_levels: int | None = None, fc_dim: int = 1024,
                 post_nms_topk: list[int] = (2000, 1000), ia: list[float] | None = None, rpn: str = "standard") -> None:
        super().__init__()
        self.ia = tuple(float(v) for v in ia) if ia else None
        c = ch[0]
        self.nc, self.nl, self.sizes = nc, len(ch), sizes
        self.roi_levels = roi_levels or len(ch)
        self.register_buffer("stride", torch.zeros(self.nl), persistent=True)
        self.rpn = build_rpn(rpn, c, ratios, post_nms_topk)
        if self.rpn_stage1:
            self.train_outputs = (*type(self).train_outputs, "rpn_stage1")
        self.roi_align = MultiScaleRoIAlign([str(i) for i in range(self.roi_levels)], 7, 2)
        self.box_head, width = box_head(c, fc_dim)
        self.cls_score = nn.Linear(width, nc + 1)
        self.bbox_pred = nn.Linear(width, (nc + 1) * 4)  # class-specific, background slot unused

    @property
    def rpn_stage1(self) -> bool:
        """Whether the RPN is a Cascade RPN, whose first stage the loss scores too (``rpn_box1``)."""
        return bool(self.rpn.stage1)

    def anchor_sizes(self) -> list[float]:
        return list(self.sizes) if self.sizes is not None else [8.0 * float(s) for s in self.stride]

    def image_hw(self, feats: list[torch.Tensor]) -> tuple[int, int]:
        """Network input size (H, W) in pixels, from the finest level and its stride."""
        s = float(self.stride[0])
        return int(round(feats[0].shape[-2] * s)), int(round(feats[0].shape[-1] * s))

    def roi_forward(self, feats: list[torch.Tensor], rois: list[torch.Tensor],
                    labels: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """RoIAlign 7x7 on the RoI levels + the RoI head (:meth:`roi_heads`).

        Args:
            feats: the L level maps. rois: B tensors [R_i, 4] xyxy pixels. labels: in training, the RoIs' labels
                per image ([R_i], 0 = background), for Inverted Attention (``ia``).

        Returns:
            class logits [sum R_i, nc + 1] (0 = background), deltas [sum R_i, nc + 1, 4] (weights 10, 10, 5, 5).
        """
        hw = self.image_hw(feats)
        x = OrderedDict((str(i), f) for i, f in enumerate(feats[: self.roi_levels]))
        pooled = self.roi_align(x, [r.to(feats[0].dtype) for r in rois], [hw] * len(rois))
        if self.ia is not None and self.training and labels is not None:
            pooled = self.inverted_attention(pooled, torch.cat(labels))
        return self.roi_heads(pooled)

    def roi_heads(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """RoI features [R, C, 7, 7] -> (class logits [R, nc + 1], deltas [R, nc + 1, 4]): two fc layers, then both."""
        h = self.box_head(pooled)
        return self.cls_score(h), self.bbox_pred(h).view(-1, self.nc + 1, 4)

    def inverted_attention(self, pooled: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Zero the most attended cells of the hardest positive RoIs (the ``ia`` argument; training only).

        Attention is Grad-CAM of each RoI's own class score: channel weights = the spatial mean of the score's
        gradient with respect to the RoI features, attention = ReLU(sum over channels of weight x feature).
        The gradient is taken on a detached copy, so it adds no term to the training graph.
        """
        cells, frac = self.ia
        pos = torch.nonzero(labels > 0).flatten()
        if pos.numel() == 0:
            return pooled
        with torch.enable_grad():
            f = pooled[pos].detach().float().requires_grad_(True)
            logits = self.roi_heads(f)[0].float()
            score = logits.gather(1, labels[pos, None]).sum()
            grad, = torch.autograd.grad(score, f)
        prob = logits.detach().softmax(1).gather(1, labels[pos, None]).flatten()
        hard = pos[prob.argsort()[: max(1, round(frac * pos.numel()))]]  # the lowest probabilities of their class
        cam = torch.relu((grad.mean((2, 3), keepdim=True) * f.detach()).sum(1))  # [P, 7, 7]
        cam = cam[torch.searchsorted(pos, hard)].flatten(1)
        k = max(1, round(cells * cam.shape[1]))
        mask = torch.ones_like(cam)
        mask.scatter_(1, cam.topk(k, 1).indices, 0.0)
        out = pooled.clone()
        out[hard] = pooled[hard] * mask.view(-1, 1, *pooled.shape[2:]).to(pooled.dtype)
        return out

    def sample_targets(self, anchors: torch.Tensor, props: list[torch.Tensor], targets: Mapping[str, torch.Tensor],
                       dtype: torch.dtype, extras: Mapping[str, Any] | None = None, per_level: list[int] | None = None
                       ) -> tuple[list[tuple], list[torch.Tensor], list[tuple], list[tuple]]:
        """Match and sample both stages' training targets, image by image.

        Args:
            anchors: [A, 4] xyxy pixels ([B, A, 4]: a cascade's refined anchors, per image).
            props: B proposal sets [P_i, 4] xyxy pixels (detached).
            targets: the batch's ``cls``, ``bboxes`` (normalized xywh), ``batch_idx``, ``img``.
            dtype: the RPN outputs' dtype (proposals are candidates at that precision).
            extras, per_level: a cascade's first stage (its square anchors) and the anchors per level.

        Returns:
            per image (sampled anchors, objectness targets, positive anchors, their box targets),
            per image the sampled RoIs [r_i, 4] (positives first), per image (RoI labels [r_i], box targets
            [r_i, 4], the ground-truth index of each positive RoI [p_i]), and for a cascade per image (stage-1 positive anchors, their box targets) (else []).
        """
        rpn_samples, rois, roi_samples, stage1 = [], [], [], []
        a0 = extras["anchors0"].float() if self.rpn_stage1 else None  # a cascade's square anchors
        for i, (labels, gt) in enumerate(image_targets(targets, len(props), anchors.device)):
            a = (anchors[i] if anchors.dim() == 3 else anchors).float()
            if a0 is not None:
                m1 = region_targets(gt, a0, per_level, self.anchor_sizes())
                pos1 = (m1 >= 0).nonzero(as_tuple=True)[0]
                m1 = m1[pos1]
                stage1.append((pos1, encode_boxes(gt[m1], a0[pos1]) if pos1.numel() else a0.new_zeros(0, 4)))
            matched = match_anchors(gt, a, *self.rpn.iou_thresholds)
            pos, neg = sample_balanced(matched, self.rpn_batch, self.rpn_pos)
            target = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)]).float()
            box_target = encode_boxes(gt[matched[pos]], a[pos]) if pos.numel() else a.new_zeros(0, 4)
            rpn_samples.append((torch.cat([pos, neg]), target, pos, box_target))
            cand = torch.cat([props[i].to(dtype).float(), gt])  # proposals + ground truth, matched at roi_iou
            if gt.numel():
                iou, idx = box_iou(gt, cand).max(0)
                m = torch.where(iou >= self.roi_iou, idx, torch.full_like(idx, -1))
            else:
                m = torch.full((cand.shape[0],), -1, dtype=torch.long, device=cand.device)
            pos, neg = sample_balanced(m, self.roi_batch, self.roi_pos)
            sel = torch.cat([pos, neg])
            rois.append(cand[sel])
            lab = torch.zeros(sel.numel(), dtype=torch.long, device=cand.device)
            lab[: pos.numel()] = labels[m[pos]] + 1
            tg = torch.zeros(sel.numel(), 4, device=cand.device)
            if pos.numel():
                tg[: pos.numel()] = encode_boxes(gt[m[pos]], cand[pos], ROI_WEIGHTS)
            roi_samples.append((lab, tg, m[pos]))
        return rpn_samples, rois, roi_samples, stage1

    def forward(self, x: list[torch.Tensor] | torch.Tensor,
                targets: Mapping[str, torch.Tensor] | None = None) -> list[Any] | torch.Tensor:
        x = [x] if isinstance(x, torch.Tensor) else list(x)  # one level arrives as a tensor
        obj, deltas, anchors, per_level, extras = self.rpn(x, self.stride.tolist(), self.anchor_sizes())
        props = self.rpn.proposals(obj, deltas, anchors, per_level, self.image_hw(x))
        b = len(props)
        if self.training:
            if targets is None:
                raise MirrordetError("RCNNHead samples its RoIs from the targets in training: call the model as "
                                     "model(images, targets)")
            rpn_samples, rois, roi_samples, stage1 = self.sample_targets(anchors, props, targets, obj.dtype, extras,
                                                                         per_level)
            logits, rdeltas = self.roi_forward(x, rois, [lab for lab, *_ in roi_samples])
            out = [obj, deltas, rpn_samples, logits, rdeltas, roi_samples]
            out = out + [(extras["deltas1"], stage1)] if self.rpn_stage1 else out
            return self.more_train_outputs(out, x, rois, roi_samples, targets)
        logits, rdeltas = self.roi_forward(x, props)
        scores = logits.float().softmax(-1)[:, 1:]  # [R, nc]
        rois = torch.cat(props).float()[:, None].expand(-1, self.nc, -1)
        boxes = clip_boxes_to_image(decode_boxes(rdeltas[:, 1:].float(), rois, ROI_WEIGHTS), self.image_hw(x))
        per_roi = torch.cat([boxes, scores[..., None]], -1)  # [R, nc, 5]
        r = max(max(len(q) for q in props), 1)
        out = per_roi.new_zeros(b, r, self.nc, 5)
        for i, chunk in enumerate(per_roi.split([len(q) for q in props])):
            out[i, : len(chunk)] = chunk
        return out

    def more_train_outputs(self, out: list[Any], x: list[torch.Tensor], rois: list[torch.Tensor],
                           roi_samples: list[tuple], targets: Mapping[str, torch.Tensor]) -> list[Any]:
        """The training output, extended by subclasses that score more per RoI (a mask branch). Default: as is."""
        return out

    def postprocess(self, preds: torch.Tensor, nms: NMSSettings) -> list[Detections]:
        """Eval output [B, R, nc, 5] -> per image :class:`Detections`: (RoI, class) boxes scoring above
        ``nms.conf``, wider and taller than 0.01 px, NMS, best ``nms.max_det`` (always multi-label)."""
        out = []
        nc = preds.shape[2]
        for p in preds.float():
            flat = p.reshape(-1, 5)
            cls = torch.arange(nc, device=p.device).repeat(p.shape[0])
            keep = flat[:, 4] > nms.conf
            flat, cls = flat[keep], cls[keep]
            keep = remove_small_boxes(flat[:, :4], 1e-2)
            flat, cls = flat[keep], cls[keep]
            out.append(select_and_suppress(flat[:, :4], flat[:, 4], cls, nms, topk=max(len(cls), 1)))
        return out

    arg_spec: tuple = (("nc", int), ("sizes", (list, type(None))), ("ratios", list),
                       ("roi_levels", (int, type(None))), ("fc_dim", (int, list)), ("post_nms_topk", list),
                       ("ia", (list, type(None))), ("rpn", str))

    @classmethod
    def from_yaml(cls, c_in: list, args: list, n: int, ctx: BuildContext):
        """Args ``[nc, sizes=None, ratios=[0.5, 1, 2], roi_levels=None, fc_dim=1024,
        post_nms_topk=[2000, 1000], ia=None, rpn='standard']``; ``from`` lists the levels (finest first).
        ``fc_dim`` may be ``[[conv widths], [fc widths]]`` (:func:`box_head`)."""
        full = cls.checked_args(c_in, args)
        return cls(*full).with_conventions(ctx.conventions), args[0], full

    def with_conventions(self, conventions: str) -> "RCNNHead":
        """Apply the model file's ``conventions``: with ``torchvision`` the (standard) RPN places its anchors as
        torchvision's ``AnchorGenerator`` does, the rest of the decoding being torchvision's already. Returns self.

        Raises:
            ModelConfigError: torchvision conventions with a Cascade RPN (torchvision has none).
        """
        if conventions == "torchvision":
            if self.rpn_stage1:
                raise ModelConfigError("conventions: torchvision applies to the standard RPN, not a Cascade RPN")
            self.rpn.conventions = conventions
        return self

    @classmethod
    def checked_args(cls, c_in: list, args: list) -> list:
        """The constructor arguments ``[nc, ch, *rest]`` of a YAML row, checked (ModelConfigError otherwise)."""
        check_args(cls.__name__, args, cls.arg_spec, required=1)
        ch = flat_channels(c_in)
        if len(set(ch)) != 1:
            raise ModelConfigError(f"RCNNHead needs levels of equal width (shared RPN), got {ch}")
        if args[0] < 1:
            raise ModelConfigError(f"RCNNHead needs nc >= 1, got {args[0]}")
        if len(args) > 1 and args[1] is not None and len(args[1]) != len(ch):
            raise ModelConfigError(f"RCNNHead sizes list one size per level ({len(ch)}), got {args[1]}")
        if len(args) > 3 and args[3] is not None and not 1 <= args[3] <= len(ch):
            raise ModelConfigError(f"RCNNHead roi_levels must be in 1..{len(ch)}, got {args[3]}")
        if len(args) > 5 and (len(args[5]) != 2 or not all(isinstance(k, int) and k > 0 for k in args[5])):
            raise ModelConfigError(f"RCNNHead post_nms_topk must be [train, eval] positive ints, got {args[5]}")
        if len(args) > 6 and args[6] is not None and not (
                len(args[6]) == 2 and all(isinstance(v, (int, float)) and 0 < v <= 1 for v in args[6])):
            raise ModelConfigError(f"RCNNHead ia must be [cells, rois], two fractions in (0, 1], got {args[6]}")
        if len(args) > 4 and isinstance(args[4], list) and not (
                len(args[4]) == 2 and all(isinstance(v, list) and all(isinstance(w, int) and w > 0 for w in v)
                                          for v in args[4]) and args[4][1]):
            raise ModelConfigError(f"RCNNHead fc_dim must be a width or [[conv widths], [fc widths]] (at least one fc), "
                                   f"got {args[4]}")
        if len(args) > 7 and args[7] not in RPN_KINDS:
            raise ModelConfigError(f"RCNNHead rpn must be one of {', '.join(RPN_KINDS)}, got {args[7]!r}")
        return [args[0], tuple(ch), *args[1:]]
