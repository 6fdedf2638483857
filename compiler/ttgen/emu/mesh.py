"""Mesh mappers and composers for the single-chip (1x1) emulated mesh: replicate and shard are
identities over one device; a shard over a mesh dim of size 1 keeps the whole tensor."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConcatMesh2dToTensor", "ConcatMeshToTensor", "ReplicateTensorToMesh", "ShardTensor2dMesh",
    "ShardTensorToMesh", "concat_mesh_to_tensor_composer", "replicate_tensor_to_mesh_mapper",
    "shard_tensor_to_mesh_mapper",
]  # fmt: skip


@dataclass(frozen=True)
class TensorToMesh:
    kind: str
    dims: tuple = ()


@dataclass(frozen=True)
class MeshToTensor:
    dims: tuple = ()


def replicate_tensor_to_mesh_mapper(mesh_device):
    return TensorToMesh("replicate")


def shard_tensor_to_mesh_mapper(mesh_device, dim):
    return TensorToMesh("shard", (dim,))


def concat_mesh_to_tensor_composer(mesh_device, dim):
    return MeshToTensor((dim,))


def ReplicateTensorToMesh(mesh_device):  # noqa: N802 - ttnn's name
    return replicate_tensor_to_mesh_mapper(mesh_device)


def ShardTensorToMesh(mesh_device, dim):  # noqa: N802
    return shard_tensor_to_mesh_mapper(mesh_device, dim)


def ShardTensor2dMesh(mesh_device, mesh_shape, dims):  # noqa: N802
    return TensorToMesh("shard2d", tuple(dims))


def ConcatMeshToTensor(mesh_device, dim):  # noqa: N802
    return concat_mesh_to_tensor_composer(mesh_device, dim)


def ConcatMesh2dToTensor(mesh_device, mesh_shape, dims):  # noqa: N802
    return MeshToTensor(tuple(dims))
