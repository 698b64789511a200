"""The recipe makes scaling data: at equal tokens a bigger model is better (CPU, defaults)."""

from pathlib import Path

import pytest

from service.scaling.shape_family import ShapeFamily
from service.trainer import CorpusSpec, ModelShape, TrainConfig, train

CONTEXT = 64
TOKENS = 600_000


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0])
def test_bigger_models_are_better_at_equal_tokens(cache_dir: Path, seed: int) -> None:
    """Three sizes of the family (7k, 66k, 246k total params), the recipe's own lr, batch and
    warmup: the default path a planned job takes. Before the small-scale rules the largest was
    the worst (bench/results/recipe_sweep.md)."""
    family = ShapeFamily(vocab_size=256, context_tokens=CONTEXT)
    corpus = CorpusSpec(max_bytes=3_000_000, val_tokens=65_536)
    losses = []
    for params in (7_216, 65_728, 246_240):
        shape = family.snap(params)
        assert shape.params == params
        result = train(
            TrainConfig(
                shape=ModelShape(shape.n_layer, shape.d_model, shape.n_heads, CONTEXT),
                tokens=TOKENS,
                corpus=corpus,
                cache_dir=str(cache_dir),
                eval_tokens=65_536,
                device="cpu",
                threads=1,
                seed=seed,
            )
        )
        assert result.status == "ok" and result.val_loss is not None
        assert result.total_params == params
        assert result.steps >= 256  # the recipe's step rule, not DeepSeek's batch
        losses.append(result.val_loss)
    # Each step up in size gains more than seed noise (about 0.02 nats here).
    assert losses[0] - losses[1] > 0.05 and losses[1] - losses[2] > 0.05, losses
