"""PretrainTask(compile=True): the masks' changing token counts stay symbolic, so nothing recompiles after step 1."""

from __future__ import annotations

import copy

import pytest
import torch
from test_pretrain_task import SCHEDULE, _batch, _loader, _models, _Outputs, _trainer
from torch._dynamo.utils import counters

from jepa.encoders import EncoderConfig, VideoViT
from jepa.encoders.masking import check_masks
from jepa.tasks.pretrain import PretrainTask


@pytest.fixture(autouse=True)
def _one_thread_fresh_dynamo():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()
    torch.set_num_threads(previous)


def _token_counts(batch):
    """(context K, target K) of every (group, mask) pair of a collated batch."""
    return {(int(me.shape[1]), int(mp.shape[1])) for _, mes, mps in batch for me, mp in zip(mes, mps, strict=True)}


def test_encoder_keeps_the_kept_token_count_symbolic():
    torch.manual_seed(0)
    enc = VideoViT(EncoderConfig(embed_dim=48, depth=1, num_heads=2, img_size=32, num_frames=4))
    compiled = torch.compile(enc, dynamic=True)
    x = torch.randn(2, 3, 4, 32, 32)
    counters.clear()
    for k in (5, 6, 7):  # the first call compiles; then any K reuses the graph (K = 3 would duck-size with RGB)
        masks = [torch.stack([torch.randperm(8)[:k].sort().values for _ in range(2)])]
        torch.testing.assert_close(compiled(x, masks=masks), enc(x, masks=masks), rtol=1e-4, atol=1e-5)
    assert counters["stats"]["unique_graphs"] == 1


def test_check_masks_still_refuses_unequal_lengths():
    masks = [torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long)]
    with pytest.raises(ValueError, match=r"same number of tokens K, got \[3, 4\]"):
        check_masks(masks, batch=2, num_tokens=8)


def test_compiled_training_matches_eager_without_recompiling(tmp_path):
    batches = [_batch(seed) for seed in range(3)]
    assert len(set().union(*map(_token_counts, batches))) > 2  # the batches really change the token counts
    enc, pred = _models()
    eager = PretrainTask(encoder=copy.deepcopy(enc), predictor=copy.deepcopy(pred), **SCHEDULE)
    compiled = PretrainTask(encoder=enc, predictor=pred, compile=True, **SCHEDULE)
    assert compiled.compile_options == {"dynamic": True}
    eager_out, compiled_out, graphs = _Outputs(), _Outputs(), []

    class _Graphs(_Outputs):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            graphs.append(counters["stats"]["unique_graphs"])

    _trainer(max_steps=3, callbacks=[eager_out]).fit(eager, train_dataloaders=_loader(*batches))
    counters.clear()
    _trainer(max_steps=3, callbacks=[compiled_out, _Graphs()]).fit(compiled, train_dataloaders=_loader(*batches))

    assert graphs[0] > 0 and graphs[1:] == [graphs[0]] * 2  # steps 2 and 3 compiled nothing new
    assert compiled_out.losses == pytest.approx(eager_out.losses, rel=1e-4)
    for name in ("encoder", "predictor", "target_encoder"):
        mine, ref = getattr(compiled, name).state_dict(), getattr(eager, name).state_dict()
        assert list(mine) == list(ref)  # compiled in place: checkpoints keep their keys
        for key in ref:
            torch.testing.assert_close(mine[key], ref[key], rtol=1e-3, atol=1e-5, msg=f"{name}.{key}")


def test_compile_option_is_checked():
    with pytest.raises(TypeError, match="compile must be a bool or a mapping"):
        PretrainTask(encoder="vit_tiny", compile="yes")
    assert PretrainTask(encoder="vit_tiny", compile={"mode": "max-autotune"}).compile_options == {
        "mode": "max-autotune"
    }
