"""`ttgen run`: generate text with an emitted model package on the emulator (or real ttnn).

Loads the package's HF checkpoint (plain folder; the packaged SmolLM2 GGUF is converted on first
use), converts and caches the weights as TTNN tensors, prefills each prompt, decodes all users
together through the captured trace, streams the text, reports load times and tokens/s, and checks
the tokens against HF greedy decoding."""

from __future__ import annotations

import importlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ttgen.errors import TtgenError

__all__ = ["NEAR_TIE", "RunResult", "hf_greedy", "load_package", "run"]

# An HF top-2 logit margin below this is a near-tie: which token wins there comes down to rounding
# (fp32 summation order differs between CPUs' BLAS kernels), so a difference there is not an error.
NEAR_TIE = 0.01


@dataclass
class RunResult:
    prompts: list[str]
    completions: list[str]
    tokens: list[list[int]]
    hf_tokens: list[list[int]] | None
    hf_margins: list[list[float]] | None  # HF's top-2 logit margin at each of its greedy steps
    load_seconds: float
    prefill_tokens_per_s: float
    decode_tokens_per_s: float

    @property
    def matches_hf(self) -> bool | None:
        return None if self.hf_tokens is None else self.tokens == self.hf_tokens

    def differences(self) -> list[tuple[int, int, float]]:
        """(user, new tokens equal HF before the first difference, HF's top-2 margin there) for
        each user whose tokens differ from HF's."""
        found = []
        for user, (ours, ref) in enumerate(zip(self.tokens, self.hf_tokens or [], strict=False)):
            same = next((i for i, (a, b) in enumerate(zip(ours, ref, strict=True)) if a != b), None)
            if same is not None:
                found.append((user, same, self.hf_margins[user][same]))
        return found


def load_package(path: Path, modules: tuple[str, ...] = ("model", "generator", "model_config")):
    """Import a generated package's `modules` (a folder with model.py, model_config.py and, for a
    causal LM, generator.py; an image classifier's runner.py)."""
    path = Path(path).resolve()
    if not (path / "model.py").is_file() or not (path / "model_config.py").is_file():
        raise TtgenError(
            f"{path}: not a ttgen-generated model package (no model.py / model_config.py)"
        )
    from ttgen.emit.writer import check_package_name, verify_package

    verify_package(path)
    check_package_name(path)
    parent, name = str(path.parent), path.name
    if parent not in sys.path:
        sys.path.insert(0, parent)
    return {m: importlib.import_module(f"{name}.{m}") for m in modules}


def hf_greedy(hf, prompt, n: int) -> tuple[list[int], list[float]]:
    """Plain argmax decoding with HF's KV cache (no stop token, as `run` decodes): the tokens and,
    at each step, the margin between HF's top two logits."""
    import torch

    tokens, margins = [], []

    def pick(logits) -> None:
        top2 = torch.topk(logits[0, -1], 2)
        tokens.append(int(top2.indices[0]))
        margins.append(float(top2.values[0] - top2.values[1]))

    with torch.no_grad():
        out = hf(input_ids=prompt[None], use_cache=True)
        pick(out.logits)
        for _ in range(n - 1):
            out = hf(input_ids=torch.tensor([[tokens[-1]]]), cache=out.cache, use_cache=True)
            pick(out.logits)
    return tokens, margins


def default_checkpoint(package: Path) -> Path:
    """The checkpoint a package runs with when none is given: SmolLM2 from its GGUF."""
    if Path(package).name.startswith("smollm2"):
        from ttgen.models.gguf import smollm2_checkpoint

        return smollm2_checkpoint()
    raise TtgenError(
        f"{package}: give --checkpoint DIR (an HF folder with the weights this package was generated for)"
    )


def run(package: Path, prompts: list[str], *, max_new_tokens: int, checkpoint: Path | None, weight_cache: Path,
        compare_hf: bool = True, on_text=None, status=lambda _m: None) -> RunResult:  # fmt: skip
    import torch

    for i, p in enumerate(prompts):
        if not p.strip():
            raise TtgenError(f"prompt {i + 1} is empty")
    status("loading the generated package")
    mods = load_package(package)
    cfg = mods["model_config"]
    if len(prompts) > cfg.MAX_BATCH:
        raise TtgenError(f"{len(prompts)} prompts exceed the package's MAX_BATCH {cfg.MAX_BATCH}")
    checkpoint = Path(checkpoint) if checkpoint else default_checkpoint(package)
    status(f"loading the HF checkpoint {checkpoint}")
    from ttgen.models.checkpoint import load_checkpoint, load_tokenizer

    hf = load_checkpoint(checkpoint)
    tokenizer = load_tokenizer(checkpoint)
    if (hf.config.hidden_size, hf.config.num_hidden_layers, hf.config.vocab_size) != (
        cfg.DIM,
        cfg.N_LAYERS,
        cfg.VOCAB_SIZE,
    ):
        raise TtgenError(
            f"{checkpoint}: its model (dim {hf.config.hidden_size}, {hf.config.num_hidden_layers} layers) is not the one {package} was generated for"
        )
    ids = [torch.tensor(tokenizer(p).input_ids, dtype=torch.int64) for p in prompts]
    longest = max(len(i) for i in ids)
    if longest + max_new_tokens > cfg.MAX_SEQ_LEN:
        raise TtgenError(
            f"a prompt of {longest} tokens + {max_new_tokens} new tokens exceeds the maximum sequence length {cfg.MAX_SEQ_LEN}"
        )

    import ttnn

    device = ttnn.open_device(device_id=0, trace_region_size=64 << 20, num_command_queues=2)
    try:
        status(f"converting and caching weights in {weight_cache}")
        start = time.perf_counter()
        model = mods["model"].Transformer(
            device, {k: v.detach() for k, v in hf.state_dict().items()}, weight_cache
        )
        load_seconds = time.perf_counter() - start
        generator = mods["generator"].Generator(model, two_cqs=True)
        status("prefill")
        start = time.perf_counter()
        first_logits = generator.prefill(ids)
        prefill_s = time.perf_counter() - start
        outputs = [[int(t)] for t in first_logits.argmax(-1)]
        if on_text:
            for u in range(len(ids)):
                on_text(u, tokenizer.decode(outputs[u]))
        status("decode")
        tokens = torch.zeros(cfg.MAX_BATCH, dtype=torch.int64)
        positions = torch.full((cfg.MAX_BATCH,), -1, dtype=torch.int64)
        start = time.perf_counter()
        steps = 0
        for step in range(max_new_tokens - 1):
            for u, prompt_ids in enumerate(ids):
                tokens[u], positions[u] = outputs[u][-1], len(prompt_ids) + step
            logits = generator.decode(tokens, positions)[: len(ids)]
            steps += 1
            for u, t in enumerate(logits.argmax(-1).tolist()):
                outputs[u].append(t)
                if on_text:
                    on_text(u, tokenizer.decode(outputs[u]))
        decode_s = time.perf_counter() - start
        generator.release()
    finally:
        ttnn.close_device(device)
    hf_tokens = hf_margins = None
    if compare_hf:
        status("HF greedy reference")
        greedy = [hf_greedy(hf, i, max_new_tokens) for i in ids]
        hf_tokens, hf_margins = [t for t, _ in greedy], [m for _, m in greedy]
    total_prompt = sum(len(i) for i in ids)
    return RunResult(
        prompts, [tokenizer.decode(o) for o in outputs], outputs, hf_tokens, hf_margins, load_seconds,
        total_prompt / prefill_s if prefill_s else 0.0, steps * len(ids) / decode_s if decode_s else 0.0,
    )  # fmt: skip
