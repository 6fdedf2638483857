"""`ttgen run`'s comparison with HF greedy decoding: HF's tokens and top-2 margins, and where ours
first differ."""

import torch

from ttgen.models import build_model, get_family
from ttgen.models.registry import preset_config
from ttgen.run import RunResult, hf_greedy


def test_hf_greedy_tokens_and_margins_match_a_full_forward():
    torch.manual_seed(0)
    config = preset_config(get_family("llama"), "tiny")
    config._attn_implementation = "sdpa"
    model = type(build_model(get_family("llama"))[0])(config).eval()
    prompt = torch.randint(0, config.vocab_size, (5,))
    tokens, margins = hf_greedy(model, prompt, 6)
    with torch.no_grad():  # the same steps from one forward over prompt + tokens
        logits = model(input_ids=torch.cat([prompt, torch.tensor(tokens)])[None]).logits[0, 4:-1]
    top2 = torch.topk(logits, 2)
    assert tokens == top2.indices[:, 0].tolist()
    torch.testing.assert_close(torch.tensor(margins), top2.values[:, 0] - top2.values[:, 1],
                               rtol=0, atol=1e-4)  # fmt: skip
    assert min(margins) > 0


def test_differences_name_the_first_differing_token_and_hf_margin_there():
    result = RunResult(
        prompts=["a", "b", "c"], completions=["", "", ""],
        tokens=[[1, 2, 3], [1, 2, 9], [7, 2, 3]],
        hf_tokens=[[1, 2, 3], [1, 2, 3], [1, 2, 3]],
        hf_margins=[[0.5, 0.4, 0.3], [0.5, 0.4, 0.003], [0.25, 0.4, 0.3]],
        load_seconds=0.0, prefill_tokens_per_s=0.0, decode_tokens_per_s=0.0,
    )  # fmt: skip
    assert result.matches_hf is False
    assert result.differences() == [(1, 2, 0.003), (2, 0, 0.25)]
