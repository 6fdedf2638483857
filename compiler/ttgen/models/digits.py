"""A small trained ViT for real images that need no download: scikit-learn's bundled handwritten
digits (1,797 grayscale 8x8 images, 10 classes), split once with a fixed seed into 1,437 training
and 360 held-out images. `digits_checkpoint()` trains `ViTForImageClassification` on the training
split (seeded, deterministic, about ten seconds on two cores) the first time and caches the HF
folder under ~/.cache/ttgen; the generated ViT classifies the held-out split with it.

Pixels are normalised as HF's ViT image processor does (x / max * 2 - 1: mean and std 0.5), so a
PNG of a digit scaled to 0..255 gives the same input as the dataset's 0..16 values."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ttgen.errors import TtgenError

__all__ = ["digits_checkpoint", "digits_config", "digits_split", "train_digits_vit"]


def digits_config() -> dict:
    """The digits ViT's HF config: the vit family's `digits` preset (models/presets/vit.yaml)."""
    from ttgen.models.registry import get_family, load_presets

    return {
        k: v for k, v in load_presets(get_family("vit"))["digits"].items() if k != "torch_dtype"
    }


SPLIT_SEED = 0
HELD_OUT = 360
VERSION = 1  # bump when the recipe changes: the cache folder is keyed by it


def digits_split():
    """(train images, train labels, held-out images, held-out labels); images [n, 1, 8, 8] float32
    in [-1, 1], labels int64."""
    import torch

    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise TtgenError(
            "the digits dataset needs scikit-learn (pip install scikit-learn)"
        ) from None
    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32)[:, None] / 16.0 * 2 - 1
    labels = torch.tensor(data.target, dtype=torch.int64)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
    test, train = order[:HELD_OUT], order[HELD_OUT:]
    return images[train], labels[train], images[test], labels[test]


def train_digits_vit(out: Path, *, epochs: int = 120, seed: int = 0) -> dict:
    """Train the digits ViT into the HF folder `out`; returns {"train_accuracy", "test_accuracy"}."""
    import torch
    import transformers

    x_train, y_train, x_test, y_test = digits_split()
    torch.manual_seed(seed)
    config = transformers.ViTConfig(**digits_config())
    model = transformers.ViTForImageClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    steps = epochs * -(-len(y_train) // 64)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    shuffle = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y_train), generator=shuffle)
        for i in range(0, len(order), 64):
            batch = order[i : i + 64]
            images = x_train[batch]
            # light augmentation: a shift of up to one pixel (the digits are not centred exactly)
            dx, dy = (int(v) for v in torch.randint(-1, 2, (2,), generator=shuffle))
            images = torch.roll(images, shifts=(dy, dx), dims=(2, 3))
            loss = torch.nn.functional.cross_entropy(
                model(pixel_values=images).logits, y_train[batch]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()
    with torch.no_grad():
        train_acc = float((model(pixel_values=x_train).logits.argmax(-1) == y_train).float().mean())
        test_acc = float((model(pixel_values=x_test).logits.argmax(-1) == y_test).float().mean())
    model.save_pretrained(out)
    meta = {"train_accuracy": train_acc, "test_accuracy": test_acc, "epochs": epochs, "seed": seed,
            "version": VERSION, "held_out": HELD_OUT}  # fmt: skip
    (Path(out) / "ttgen-digits.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def digits_checkpoint(status=lambda _m: None) -> Path:
    """The cached digits ViT folder, trained on first use (written beside, then renamed: a killed
    training leaves no half-written folder)."""
    from ttgen.models.gguf import cache_root

    folder = cache_root() / f"digits-vit-v{VERSION}"
    if (folder / "ttgen-digits.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    status("training the digits ViT (once; cached in ~/.cache/ttgen)")
    tmp = Path(tempfile.mkdtemp(prefix=".digits-vit-", dir=folder.parent))
    try:
        train_digits_vit(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder
