"""TaskAlignedAssigner on hand-built cases and against a slow per-gt reference."""

import torch

from mirrordet.losses.tal import TaskAlignedAssigner


def grid_points(n: int = 4, stride: float = 8.0) -> torch.Tensor:
    """[n*n, 2] cell centers of an n x n grid, pixels, row-major."""
    c = (torch.arange(n, dtype=torch.float32) + 0.5) * stride
    gy, gx = torch.meshgrid(c, c, indexing="ij")
    return torch.stack((gx, gy), -1).view(-1, 2)


def boxes_around(points: torch.Tensor, half: float) -> torch.Tensor:
    return torch.cat((points - half, points + half), -1)


def test_candidates_inside_box_become_foreground():
    pts = grid_points()  # centers 4, 12, 20, 28
    gt = torch.tensor([[[0.0, 0.0, 16.0, 16.0]]])
    pd_bboxes = gt.expand(1, 16, 4).clone()  # every prediction equals the gt: IoU 1
    pd_scores = torch.full((1, 16, 3), 0.5)
    out = TaskAlignedAssigner(topk=10, num_classes=3)(
        pd_scores, pd_bboxes, pts, torch.tensor([[[1.0]]]), gt, torch.ones(1, 1, 1)
    )
    labels, tboxes, tscores, fg, gt_idx = out
    assert fg[0].nonzero().view(-1).tolist() == [0, 1, 4, 5]
    assert labels[0, fg[0]].tolist() == [1, 1, 1, 1]
    assert (labels[0, ~fg[0]] == 3).all()  # background label = num_classes
    assert torch.allclose(tboxes[0, fg[0]], gt[0].expand(4, 4))
    assert (tboxes[0, ~fg[0]] == 0).all()
    # equal alignment for all positives -> normalized score = max IoU of the gt = 1
    assert torch.allclose(tscores[0, fg[0], 1], torch.ones(4), atol=1e-6)
    assert tscores[0, :, [0, 2]].abs().sum() == 0 and tscores[0, ~fg[0]].abs().sum() == 0
    assert (gt_idx[0] == 0).all()


def test_topk_keeps_best_aligned_and_scores_are_normalized():
    pts = grid_points()
    gt = torch.tensor([[[0.0, 0.0, 16.0, 16.0]]])
    pd_bboxes = torch.zeros(1, 16, 4)
    pd_bboxes[0] = gt[0, 0]
    # IoU 1, 0.5625 (12x12 inside 16x16), 0.25 (8x8), 1 for anchors 0, 1, 4, 5
    pd_bboxes[0, 1] = torch.tensor([0.0, 0.0, 12.0, 12.0])
    pd_bboxes[0, 4] = torch.tensor([0.0, 0.0, 8.0, 8.0])
    pd_scores = torch.full((1, 16, 2), 0.1)
    pd_scores[0, 5, 0] = 0.9  # anchor 5 is best aligned, anchor 0 second
    assigner = TaskAlignedAssigner(topk=2, num_classes=2, alpha=0.5, beta=6.0)
    _, _, tscores, fg, _ = assigner(pd_scores, pd_bboxes, pts, torch.zeros(1, 1, 1), gt, torch.ones(1, 1, 1))
    assert fg[0].nonzero().view(-1).tolist() == [0, 5]
    a5, a0 = 0.9**0.5, 0.1**0.5  # IoU 1 for both
    assert torch.allclose(tscores[0, 5, 0], torch.tensor(1.0), atol=1e-6)
    assert torch.allclose(tscores[0, 0, 0], torch.tensor(a0 / a5), atol=1e-6)
    assert tscores[0, :, 1].abs().sum() == 0


def test_anchor_claimed_twice_keeps_higher_iou_gt():
    pts = torch.tensor([[10.0, 10.0], [30.0, 30.0], [50.0, 50.0]])
    gts = torch.tensor([[[0.0, 0.0, 40.0, 40.0], [5.0, 5.0, 60.0, 60.0]]])
    # anchor 0 and 1 lie in both boxes; anchor 1 predicts gt 1 exactly, anchor 0 predicts gt 0
    pd_bboxes = torch.tensor([[[0.0, 0.0, 40.0, 40.0], [5.0, 5.0, 60.0, 60.0], [5.0, 5.0, 60.0, 60.0]]])
    pd_scores = torch.full((1, 3, 2), 0.5)
    labels, tboxes, _, fg, gt_idx = TaskAlignedAssigner(topk=3, num_classes=2)(
        pd_scores, pd_bboxes, pts, torch.tensor([[[0.0], [1.0]]]), gts, torch.ones(1, 2, 1)
    )
    assert fg[0].tolist() == [True, True, True]
    assert gt_idx[0].tolist() == [0, 1, 1]
    assert labels[0].tolist() == [0, 1, 1]
    assert torch.equal(tboxes[0, 1], gts[0, 1])


def test_topk2_gives_a_box_its_next_anchor_when_a_neighbour_took_its_best():
    """One-to-one assignment: both boxes rank anchor 1 first; it goes to box 1 (higher IoU). With top-1 ranking
    box 0 is left without a positive; ranking 2 then keeping 1 after the conflict step gives it anchor 0."""
    pts = torch.tensor([[6.0, 6.0], [20.0, 20.0], [50.0, 50.0]])  # anchor 0 lies in box 0 only, anchor 1 in both
    gts = torch.tensor([[[0.0, 0.0, 30.0, 30.0], [12.0, 12.0, 30.0, 30.0]]])
    # IoU with box 0: anchor 0 0.40, anchor 1 0.44; anchor 1 with box 1: 0.81
    pd_bboxes = torch.tensor([[[0.0, 0.0, 19.0, 19.0], [10.0, 10.0, 30.0, 30.0], [40.0, 40.0, 60.0, 60.0]]])
    pd_scores = torch.full((1, 3, 2), 0.5)
    args = (pd_scores, pd_bboxes, pts, torch.tensor([[[0.0], [1.0]]]), gts, torch.ones(1, 2, 1))
    _, _, _, fg1, idx1 = TaskAlignedAssigner(topk=1, num_classes=2)(*args)
    assert fg1[0].tolist() == [False, True, False] and idx1[0, 1] == 1  # box 0 lost its only positive
    _, _, ts, fg, idx = TaskAlignedAssigner(topk=2, topk2=1, num_classes=2)(*args)
    assert fg[0].tolist() == [True, True, False]
    assert idx[0, :2].tolist() == [0, 1]  # one positive per box
    assert ts[0, 0, 0] > 0 and ts[0, 1, 1] > 0
    _, _, _, fg_many, _ = TaskAlignedAssigner(topk=2, num_classes=2)(*args)
    assert torch.equal(fg_many, fg)  # here topk2 removes nothing: each box kept one anchor after the conflict


def test_padding_rows_and_empty_images_are_ignored():
    pts = grid_points()
    gts = torch.zeros(2, 2, 4)
    gts[0, 0] = torch.tensor([0.0, 0.0, 32.0, 32.0])
    gts[0, 1] = torch.tensor([0.0, 0.0, 32.0, 32.0])  # padding row with a box: must be ignored
    gts[1, 0] = torch.tensor([0.0, 0.0, 32.0, 32.0])  # image 1: only padding
    mask = torch.tensor([[[1.0], [0.0]], [[0.0], [0.0]]])
    labels = torch.tensor([[[2.0], [1.0]], [[1.0], [1.0]]])
    pd_bboxes = boxes_around(pts, 6.0).unsqueeze(0).repeat(2, 1, 1)
    pd_scores = torch.rand(2, 16, 3)
    assigner = TaskAlignedAssigner(topk=4, num_classes=3)
    tl, _, ts, fg, gt_idx = assigner(pd_scores, pd_bboxes, pts, labels, gts, mask)
    assert fg[0].sum() == 4 and not fg[1].any()
    assert (tl[0, fg[0]] == 2).all() and (gt_idx[0, fg[0]] == 0).all()
    assert (tl[1] == 3).all() and ts[1].sum() == 0


def test_no_ground_truth_in_batch():
    pts = grid_points()
    out = TaskAlignedAssigner(topk=10, num_classes=5)(
        torch.rand(3, 16, 5), torch.rand(3, 16, 4), pts,
        torch.zeros(3, 0, 1), torch.zeros(3, 0, 4), torch.zeros(3, 0, 1),
    )
    labels, tboxes, tscores, fg, gt_idx = out
    assert labels.shape == (3, 16) and (labels == 5).all()
    assert tboxes.shape == (3, 16, 4) and tscores.shape == (3, 16, 5) and fg.shape == (3, 16)
    assert not fg.any() and tscores.sum() == 0 and (gt_idx == 0).all()


def reference_assign(pd_scores, pd_bboxes, pts, gt_labels, gt_bboxes, mask_gt, topk, alpha, beta):
    """Slow per-image, per-gt loop implementation of the same rules."""
    from torchvision.ops import box_iou

    bsz, n_anchor, n_cls = pd_scores.shape
    fg = torch.zeros(bsz, n_anchor, dtype=torch.bool)
    idx = torch.zeros(bsz, n_anchor, dtype=torch.long)
    scores = torch.zeros(bsz, n_anchor, n_cls)
    for b in range(bsz):
        ious = box_iou(gt_bboxes[b], pd_bboxes[b])  # [M, A]
        claims: dict[int, list[int]] = {}
        aligns = torch.zeros_like(ious)
        for m in range(gt_bboxes.shape[1]):
            if not mask_gt[b, m, 0]:
                continue
            x1, y1, x2, y2 = gt_bboxes[b, m].tolist()
            inside = (pts[:, 0] > x1) & (pts[:, 0] < x2) & (pts[:, 1] > y1) & (pts[:, 1] < y2)
            c = int(gt_labels[b, m, 0])
            align = pd_scores[b, :, c] ** alpha * ious[m] ** beta * inside
            aligns[m] = align
            for a in align.topk(topk).indices.tolist():
                if inside[a]:
                    claims.setdefault(a, []).append(m)
        chosen = {a: max(ms, key=lambda m: float(ious[m, a])) for a, ms in claims.items()}
        for a, m in chosen.items():
            fg[b, a] = True
            idx[b, a] = m
        for a, m in chosen.items():
            own = [x for x, mm in chosen.items() if mm == m]
            max_align = max(float(aligns[m, x]) for x in own)
            max_iou = max(float(ious[m, x]) for x in own)
            scores[b, a, int(gt_labels[b, m, 0])] = float(aligns[m, a]) * max_iou / (max_align + 1e-9)
    return fg, idx, scores


def test_matches_loop_reference_on_random_batch():
    g = torch.Generator().manual_seed(0)
    pts = grid_points(8, 8.0)  # 64 anchors over 64 x 64 px
    bsz, m = 3, 4
    xy = torch.rand(bsz, m, 2, generator=g) * 24
    wh = 20 + torch.rand(bsz, m, 2, generator=g) * 20
    gts = torch.cat((xy, xy + wh), -1)
    labels = torch.randint(0, 4, (bsz, m, 1), generator=g).float()
    mask = torch.ones(bsz, m, 1)
    mask[1, 3] = 0
    pd_bboxes = boxes_around(pts, 14.0).unsqueeze(0) + torch.rand(bsz, 64, 4, generator=g) * 4
    pd_scores = 0.05 + 0.9 * torch.rand(bsz, 64, 4, generator=g)
    assigner = TaskAlignedAssigner(topk=5, num_classes=4)
    _, _, ts, fg, gt_idx = assigner(pd_scores, pd_bboxes, pts, labels, gts, mask)
    ref_fg, ref_idx, ref_scores = reference_assign(pd_scores, pd_bboxes, pts, labels, gts, mask, 5, 0.5, 6.0)
    assert fg.any(1).all()
    assert torch.equal(fg, ref_fg)
    assert torch.equal(gt_idx[fg], ref_idx[fg])
    assert torch.allclose(ts, ref_scores, atol=1e-5)
