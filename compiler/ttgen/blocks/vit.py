"""The block kinds of ViT image classifiers: their typed facts, read from their own captures.

`ttgen check specs/vit.yaml` matches, covers and reads them; their lowerings (the sharded encoder of
tt-metal's ViT, vit.md §3-5) are not written yet, so the planner refuses the image_classifier model
kind before it would call them (ttgen.plan.planner)."""

from __future__ import annotations

from dataclasses import dataclass

from ttgen.blocks import BlockKind, register_block
from ttgen.plan.facts import PlanError, only


@dataclass(frozen=True)
class VitEmbeddingFacts:
    patch_size: int  # the patch convolution's kernel = stride
    channels: int
    hidden: int
    tokens: int  # patches + CLS


@dataclass(frozen=True)
class LayerNormFacts:
    eps: float


@dataclass(frozen=True)
class VitAttentionFacts:
    n_layers: int
    n_heads: int
    head_dim: int
    scale: float
    bias: bool


@dataclass(frozen=True)
class GeluMlpFacts:
    hidden: int  # fc1's output width


@dataclass(frozen=True)
class ClassifierFacts:
    classes: int


def _embedding_facts(matches, shapes) -> VitEmbeddingFacts:
    stride = only({tuple(m["patch_stride"]) for m in matches}, "patch stride")
    if len(set(stride)) != 1:
        raise PlanError(f"non-square patches {list(stride)} are not supported")
    weight = only(
        {shapes[m["w_patch"]] for m in matches}, "patch projection shape"
    )  # [hidden, C, p, p]
    if tuple(weight[2:]) != tuple(stride):
        raise PlanError(
            f"patch kernel {list(weight[2:])} != stride {list(stride)}: overlapping patches"
        )
    tokens = only({shapes[m["position_embeddings"]][1] for m in matches}, "position embeddings")
    return VitEmbeddingFacts(stride[0], weight[1], weight[0], tokens)


def _norm_facts(matches, shapes) -> LayerNormFacts:
    return LayerNormFacts(only({m["eps"] for m in matches}, "LayerNorm eps"))


def _attention_facts(matches, shapes) -> VitAttentionFacts:
    head_dim = only({m["heads_view"][-1] for m in matches}, "head_dim")
    wq = only({shapes[m["w_q"]] for m in matches}, "query projection shape")
    return VitAttentionFacts(len(matches), wq[0] // head_dim, head_dim,
                             only({m["scale"] for m in matches}, "attention scale"),
                             any(m.get("b_q") is not None for m in matches))  # fmt: skip


def _mlp_facts(matches, shapes) -> GeluMlpFacts:
    return GeluMlpFacts(only({shapes[m["w_fc1"]][0] for m in matches}, "MLP width"))


def _classifier_facts(matches, shapes) -> ClassifierFacts:
    return ClassifierFacts(only({shapes[m["w_classifier"]][0] for m in matches}, "classes"))


def _not_planned(lw, rule, matches, *_):
    raise PlanError(
        f"{rule.loc}: rule {rule.name}: the '{rule.template}' block has no lowering yet"
    )


for _name, _facts in (("vit_embeddings", _embedding_facts), ("layer_norm", _norm_facts),
                      ("vit_attention", _attention_facts), ("gelu_mlp", _mlp_facts),
                      ("encoder_layer", None), ("classifier", _classifier_facts)):  # fmt: skip
    register_block(BlockKind(_name, _not_planned, facts=_facts))
