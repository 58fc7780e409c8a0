"""Multi-block mask generator and collator vs a reference written from pretraining.md §2."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from jepa.data.masks import MaskCollator, MaskConfig, MultiBlockMaskGenerator, vjepa2_mask_configs


# ----------------------------------------------------------------------------- reference, from the spec text
def ref_block_size(seed, d, hg, wg, cfg):
    g = torch.Generator().manual_seed(seed)
    u1, u2, u3 = (torch.rand(1, generator=g).item() for _ in range(3))
    t = max(1, int(d * (cfg.temporal_scale[0] + u1 * (cfg.temporal_scale[1] - cfg.temporal_scale[0]))))
    n = int(hg * wg * (cfg.spatial_scale[0] + u2 * (cfg.spatial_scale[1] - cfg.spatial_scale[0])))
    ar = cfg.aspect_ratio[0] + u3 * (cfg.aspect_ratio[1] - cfg.aspect_ratio[0])
    return t, min(round(math.sqrt(n * ar)), hg), min(round(math.sqrt(n / ar)), wg), n


def ref_masks(seed, batch, d, hg, wg, cfg):
    """Returns trimmed (enc, pred) plus the untrimmed lists."""
    t, h, w, _ = ref_block_size(seed, d, hg, wg, cfg)
    full_enc, full_pred = [], []
    for _ in range(batch):
        while True:
            ones = [[[1] * wg for _ in range(hg)] for _ in range(d)]
            for _ in range(cfg.num_blocks):
                top = torch.randint(0, hg - h + 1, (1,)).item()
                left = torch.randint(0, wg - w + 1, (1,)).item()
                start = torch.randint(0, d - t + 1, (1,)).item()
                for tt in range(start, start + t):
                    for yy in range(top, top + h):
                        for xx in range(left, left + w):
                            ones[tt][yy][xx] = 0
            flat = [ones[tt][yy][xx] for tt in range(d) for yy in range(hg) for xx in range(wg)]
            ctx = [i for i, v in enumerate(flat) if v == 1]
            if ctx:
                break
        full_enc.append(ctx)
        full_pred.append([i for i, v in enumerate(flat) if v == 0])
        assert flat  # keep flake happy
    kc = min(map(len, full_enc))
    kt = min(map(len, full_pred))
    return [m[:kc] for m in full_enc], [m[:kt] for m in full_pred], full_enc, full_pred


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize(("crop", "expected"), [(256, (38, 179)), (384, (86, 403))])
def test_block_sizes_match_spec(crop, expected):
    cfgs = vjepa2_mask_configs()
    g = crop // 16
    for cfg, n_exp in zip(cfgs, expected, strict=True):
        gen = MultiBlockMaskGenerator(cfg, num_frames=16, crop_size=crop)
        for seed in range(20):
            t, h, w, n = ref_block_size(seed, 8, g, g, cfg)
            assert n == n_exp
            assert gen.block_size(seed) == (t, h, w)
            assert t == 8  # temporal scale 1.0: the full duration


def test_generator_matches_reference_on_fixed_seeds():
    cfgs = vjepa2_mask_configs()
    gens = [MultiBlockMaskGenerator(c, num_frames=16, crop_size=256) for c in cfgs]
    for call in range(2):
        for cfg, gen in zip(cfgs, gens, strict=True):
            torch.manual_seed(100 + call)
            enc, pred = gen(4)
            torch.manual_seed(100 + call)
            r_enc, r_pred, full_enc, full_pred = ref_masks(call, 4, 8, 16, 16, cfg)
            assert gen.counter == call  # first seed 0, one counter per generator
            assert enc.dtype == torch.int64 and pred.dtype == torch.int64
            assert enc.tolist() == r_enc and pred.tolist() == r_pred
            # trimming keeps the lowest ids and the lengths are the batch minimum
            assert enc.shape[1] == min(map(len, full_enc)) and pred.shape[1] == min(map(len, full_pred))
            assert len({len(m) for m in full_pred}) > 1 or len({len(m) for m in full_enc}) > 1  # trimming happened
            for row_e, row_p in zip(enc, pred, strict=True):
                assert torch.all(row_e[1:] > row_e[:-1]) and torch.all(row_p[1:] > row_p[:-1])  # ascending
                assert not set(row_e.tolist()) & set(row_p.tolist())  # disjoint
                assert int(row_e.max()) < 2048 and int(row_p.max()) < 2048


def test_spec_size_ranges_16f_256px():
    torch.manual_seed(0)
    gens = [MultiBlockMaskGenerator(c, num_frames=16, crop_size=256) for c in vjepa2_mask_configs()]
    for _ in range(3):
        e0, p0 = gens[0](24)
        e1, p1 = gens[1](24)
        assert 400 <= e0.shape[1] <= 600 and 850 <= p0.shape[1] <= 1100
        assert 40 <= e1.shape[1] <= 260 and 1300 <= p1.shape[1] <= 1500
        assert e0.shape[1] + p0.shape[1] <= 2048


def test_empty_context_is_redrawn_like_the_reference():
    # 2x2 grid, one slot, 4 unit boxes: ~9% of draws cover everything and must be redrawn.
    cfg = MaskConfig(num_blocks=4, spatial_scale=(0.5, 0.5), aspect_ratio=(1.0, 1.0))
    gen = MultiBlockMaskGenerator(cfg, num_frames=2, crop_size=32)
    assert gen.block_size(0) == (1, 1, 1)
    torch.manual_seed(3)
    enc, pred = gen(64)
    after_gen = torch.rand(1)
    torch.manual_seed(3)
    r_enc, r_pred, *_ = ref_masks(0, 64, 1, 2, 2, cfg)
    after_ref = torch.rand(1)
    assert enc.tolist() == r_enc and pred.tolist() == r_pred
    assert torch.equal(after_gen, after_ref)  # same number of global draws, redraws included
    assert enc.shape[1] >= 1


def test_redraw_actually_occurs_in_that_setting():
    cfg = MaskConfig(num_blocks=4, spatial_scale=(0.5, 0.5), aspect_ratio=(1.0, 1.0))
    gen = MultiBlockMaskGenerator(cfg, num_frames=2, crop_size=32)
    torch.manual_seed(3)
    empties = 0
    for _ in range(64):
        keep = gen._sample_keep((1, 1, 1))
        empties += int(keep.sum() == 0)
    assert empties > 0


def test_max_temporal_keep_and_complement_options():
    cfg = MaskConfig(num_blocks=1, spatial_scale=(0.25, 0.25), aspect_ratio=(1.0, 1.0), max_temporal_keep=0.5)
    gen = MultiBlockMaskGenerator(cfg, num_frames=8, crop_size=64)  # d=4, 4x4 grid
    torch.manual_seed(0)
    enc, pred = gen(3)
    assert int(enc.max()) < 2 * 16  # context only in the first 2 of 4 slots
    full = MultiBlockMaskGenerator(MaskConfig(num_blocks=2, full_complement=True), num_frames=8, crop_size=64)
    enc, pred = full(3)
    for e, p in zip(enc, pred, strict=True):
        assert sorted(e.tolist() + p.tolist()) == list(range(64))


def _sample(fpc, value):
    return {"clips": [torch.full((3, fpc, 64, 64), float(value))], "fpc": fpc, "path": f"v{value}.mp4"}


def test_collator_groups_by_fpc_in_insertion_order():
    collator = MaskCollator(dataset_fpcs=[16, 8, 16], crop_size=64)
    assert list(collator.generators) == [16, 8]
    batch = [_sample(8, 0), _sample(16, 1), _sample(8, 2), _sample(16, 3), _sample(8, 4)]
    torch.manual_seed(0)
    out = collator(batch)
    assert len(out) == 2
    (b16, enc16, pred16), (b8, enc8, pred8) = out
    assert b16["clips"][0].shape == (2, 3, 16, 64, 64) and b16["clips"][0][:, 0, 0, 0, 0].tolist() == [1.0, 3.0]
    assert b8["clips"][0].shape == (3, 3, 8, 64, 64) and b8["path"] == ["v0.mp4", "v2.mp4", "v4.mp4"]
    assert len(enc16) == len(pred16) == 2 and enc16[0].shape[0] == 2 and enc8[1].shape[0] == 3
    assert int(pred8[0].max()) < 4 * 16 and int(pred16[0].max()) < 8 * 16
    # single group → the 8-frame group is absent, the 16-frame generators advanced once more
    out = collator([_sample(16, 5)])
    assert len(out) == 1 and out[0][0]["clips"][0].shape[2] == 16
    assert [g.counter for g in collator.generators[16]] == [1, 1]
    assert [g.counter for g in collator.generators[8]] == [0, 0]


def test_degenerate_grid_raises_with_a_clear_message():
    gen = MultiBlockMaskGenerator(vjepa2_mask_configs()[0], num_frames=4, crop_size=32)  # 2x2 grid: 0-token blocks
    with pytest.raises(ValueError, match="empty target"):
        gen(2)


def test_collator_rejects_unknown_fpc_and_fast_forwards():
    collator = MaskCollator(dataset_fpcs=[16], crop_size=64)
    with pytest.raises(KeyError, match="fpc=8"):
        collator([_sample(8, 0)])
    collator.fast_forward(600)
    assert [g.counter for g in collator.generators[16]] == [599, 599]
    clone = copy.deepcopy(collator)  # counters survive copying as plain values
    assert [g.counter for g in clone.generators[16]] == [599, 599]


class _Clips(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return _sample(16, i)


def _run_loader(workers):
    torch.manual_seed(7)
    loader = DataLoader(
        _Clips(), batch_size=2, num_workers=workers, collate_fn=MaskCollator(dataset_fpcs=[16], crop_size=64)
    )
    return [(b[0][0]["clips"][0][:, 0, 0, 0, 0].tolist(), b[0][1][0], b[0][2][1]) for b in loader]


def test_masks_are_reproducible_with_workers():
    first, second = _run_loader(2), _run_loader(2)
    assert [x[0] for x in first] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]]
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])
    assert not all(torch.equal(first[0][2], x[2]) for x in first[1:])  # masks vary across batches
