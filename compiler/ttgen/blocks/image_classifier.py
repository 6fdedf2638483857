"""The image-classifier model kind (ViT): its facts, its layout in the HF module tree (read from the
matches' paths and graph order), its lowering toolkit and its templates' model-wide values.

An encoder layer holds, in graph order, a LayerNorm, the attention, a LayerNorm and the MLP (the
pre-norm layer); the model holds the patch embeddings, the layers, a final LayerNorm and the
classifier. A model whose matches do not line up that way is refused with the layer that differs."""

from __future__ import annotations

from ttgen.plan.facts import PlanError
from ttgen.plan.types import ClassifierLayout, ClassifierModelFacts

__all__ = ["classifier_context", "classifier_facts", "classifier_layout", "classifier_lowering"]

ROLES_WITH_FACTS = ("vit_embeddings", "layer_norm", "vit_attention", "gelu_mlp", "classifier")
LAYER_ROLES = ("layernorm_before", "attention", "layernorm_after", "mlp")
_LAYER_SLOTS = ("layer_norm", "vit_attention", "layer_norm", "gelu_mlp")


def classifier_facts(records: dict, config: dict, mode: str) -> ClassifierModelFacts:
    for role in ROLES_WITH_FACTS:
        if role not in records:
            raise PlanError(
                f"no '{role}' match in the {mode} graph: the spec's rules do not cover this model"
            )
    emb, attn = records["vit_embeddings"], records["vit_attention"]
    patches = emb.tokens - 1
    side = round(patches**0.5)
    if side * side != patches:
        raise PlanError(
            f"{patches} patches do not form a square image: non-square inputs are not supported"
        )
    if attn.n_heads * attn.head_dim != emb.hidden:
        raise PlanError(
            f"{attn.n_heads} heads x {attn.head_dim} != hidden {emb.hidden}: the attention must keep the width"
        )
    return ClassifierModelFacts(
        dim=emb.hidden,
        n_layers=attn.n_layers,
        n_heads=attn.n_heads,
        head_dim=attn.head_dim,
        hidden_dim=records["gelu_mlp"].hidden,
        n_classes=records["classifier"].classes,
        norm_eps=records["layer_norm"].eps,
        attn_scale=attn.scale,
        patch_size=emb.patch_size,
        channels=emb.channels,
        image_size=side * emb.patch_size,
        tokens=emb.tokens,
        qkv_bias=attn.bias,
    )


def classifier_layout(result, graph) -> ClassifierLayout:
    from ttgen.blocks.layout import fixed_roles, place_blocks

    roles = fixed_roles("image_classifier", "encoder layer", _LAYER_SLOTS, LAYER_ROLES,
                        "pre-norm attention, then pre-norm MLP")  # fmt: skip
    placed = place_blocks(
        result, graph, kind="image_classifier", layer_slot="encoder_layer", assign=roles
    )
    return ClassifierLayout(
        embeddings=placed.one("vit_embeddings"),
        final_norm=placed.one("layer_norm"),
        classifier=placed.one("classifier"),
        layers=placed.layers,
        layer_children=placed.layer_children,
    )


def classifier_lowering(spec, profile, facts, preset, options):
    from ttgen.plan.lower import Lowering

    return Lowering(spec, profile, facts, preset, ())


def classifier_plan_fields(lowering, spec, preset) -> dict:
    return {}


def classifier_context(plan, mods) -> dict:
    from ttgen.blocks.vit import padded_channels
    from ttgen.emit.context import EmitError, _param_path

    lay, f = plan.layout, plan.facts
    prefix = lay.layers[0].rsplit(".", 1)[0] if lay.layers else ""
    if [f"{prefix}.{i}" for i in range(len(lay.layers))] != list(lay.layers):
        raise EmitError(
            f"encoder layers {lay.layers[:3]}... are not numbered {prefix}.0, {prefix}.1, ..."
        )
    paths = {"layer_prefix": prefix, "embeddings": lay.embeddings, "final_norm": lay.final_norm,
             "classifier": lay.classifier, **dict(lay.layer_children)}  # fmt: skip
    from ttgen.emit.exprs import mem_expr

    encoder_in = mods["vit_embeddings"].program("forward")[-1].output  # what every layer takes
    return {
        "paths": {k: _param_path(v) if v else "" for k, v in paths.items()},
        "padded_channels": padded_channels(f.channels, f.patch_size),
        "seq": encoder_in.shape[1],
        "encoder_memcfg": mem_expr(encoder_in.memory),
        "encoder_dtype": f"ttnn.{encoder_in.dtype}",
        "sharded": encoder_in.memory.sharded,
    }
