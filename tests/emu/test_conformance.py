"""Every public function and class of the emulator exists in the ttnn 0.81.1 API manifest with the
same parameter names, kinds and defaults. Deviations are listed below with their reason."""

import pytest

from ttgen import emu as ttnn
from ttgen.emu.conformance import (
    DEVIATIONS,
    ENUMS,
    EXTENSIONS,
    UNEMULATED_OVERLOADS,
    compare,
    manifest,
    manifest_signatures,
    overload_key,
    public_api,
    signature_of,
    signatures_of,
)


def _manifest():
    return manifest()


def _ours(obj):
    return signature_of(obj)


def _theirs(entry):
    return manifest_signatures(entry)


def _everything():
    return public_api(ttnn)


@pytest.mark.parametrize(
    "qualified, name, obj",
    list(_everything()),
    ids=lambda v: v if isinstance(v, str) and v.startswith("ttnn") else "",
)
def test_signature_matches_manifest(qualified, name, obj):
    data = _manifest()
    entry = data["functions"].get(qualified) or data["classes"].get(qualified)
    if entry is None:
        assert name in EXTENSIONS, (
            f"{qualified} is neither in the ttnn 0.81.1 manifest nor a listed extension"
        )
        return
    assert entry.get("exists", True), f"{qualified} does not exist in ttnn 0.81.1"
    problems = compare(qualified, obj, entry)
    assert not problems, "\n".join(problems)


def test_enum_members_exist_in_manifest():
    data = _manifest()
    for name in ENUMS:
        ours = set(getattr(ttnn, name).__members__)
        assert ours <= set(data["enums"][f"ttnn.{name}"]), name


def test_scope_of_issue_is_present():
    required = """open_device close_device from_torch to_torch as_tensor to_device from_device to_layout
    to_memory_config typecast reshape permute transpose slice pad concat clone deallocate tilize untilize
    sharded_to_interleaved interleaved_to_sharded copy_host_to_device_tensor linear matmul add mul silu gelu
    softmax rms_norm layer_norm embedding argmax topk plus_one fill_cache update_cache begin_trace_capture
    end_trace_capture execute_trace release_trace record_event wait_for_event synchronize_device
    create_sharded_memory_config num_cores_to_corerangeset init_device_compute_kernel_config""".split()
    assert [n for n in required if not hasattr(ttnn, n)] == []
    for n in "nlp_create_qkv_heads nlp_create_qkv_heads_decode nlp_concat_heads nlp_concat_heads_decode rotary_embedding_llama paged_update_cache paged_fill_cache".split():
        assert hasattr(ttnn.experimental, n), n
    for n in "scaled_dot_product_attention scaled_dot_product_attention_decode paged_scaled_dot_product_attention_decode".split():
        assert hasattr(ttnn.transformer, n), n


def test_deviation_list_is_current():
    """Each listed deviation is a real difference: a fixed one must leave the list."""
    data = _manifest()
    ours = {qualified: obj for qualified, _, obj in _everything()}
    for qualified in DEVIATIONS:
        entry = data["functions"].get(qualified) or data["classes"].get(qualified)
        assert entry is not None and qualified in ours, qualified
        assert any(sig not in _theirs(entry) for sig in signatures_of(ours[qualified])), (
            f"{qualified} now matches: drop it from DEVIATIONS"
        )


def test_every_overload_is_compared_not_their_union():
    """interleaved_to_sharded has two overloads in 0.81.1; the emulator provides both, and each is
    compared on its own: an emulator missing one fails."""
    entry = _manifest()["functions"]["ttnn.interleaved_to_sharded"]
    assert (
        len(_theirs(entry)) == 2
        and compare("ttnn.interleaved_to_sharded", ttnn.interleaved_to_sharded, entry) == []
    )

    class OneOverload:  # the grid overload dropped
        overloads = ttnn.interleaved_to_sharded.overloads[1:]

    assert any(
        "is not emulated" in p for p in compare("ttnn.interleaved_to_sharded", OneOverload, entry)
    )


def test_unemulated_overloads_exist_in_the_manifest():
    data = _manifest()
    for qualified, key in UNEMULATED_OVERLOADS:
        entry = data["functions"].get(qualified) or data["classes"].get(qualified)
        assert key in [overload_key(sig) for sig in _theirs(entry)], (qualified, key)
