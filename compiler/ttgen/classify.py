"""`ttgen run` on an image-classifier package: classify image files or a dataset split with the
generated model (the traced runner, two command queues) and with the HF reference on the same
weights, and report accuracy, top-1 agreement and images/s."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ttgen.errors import TtgenError
from ttgen.run import load_package

__all__ = ["DATASETS", "ClassifyResult", "classify", "is_classifier_package", "load_images"]

DATASETS = ("digits",)  # scikit-learn's handwritten digits, held-out split (ttgen.models.digits)


@dataclass
class ClassifyResult:
    names: list[str]  # one per image: a file name, or "digits[i]"
    labels: list[int] | None  # ground truth (a dataset split)
    predictions: list[int]
    hf_predictions: list[int]
    load_seconds: float
    images_per_s: float

    def _rate(self, a, b) -> float:
        return sum(int(x == y) for x, y in zip(a, b, strict=True)) / len(a)

    @property
    def agreement(self) -> float:
        return self._rate(self.predictions, self.hf_predictions)

    @property
    def accuracy(self) -> float | None:
        return None if self.labels is None else self._rate(self.predictions, self.labels)

    @property
    def hf_accuracy(self) -> float | None:
        return None if self.labels is None else self._rate(self.hf_predictions, self.labels)


def is_classifier_package(path: Path) -> bool:
    return (Path(path) / "runner.py").is_file()


def load_images(files: list[Path], channels: int, size: int):
    """Image files (PNG, JPEG, ... via Pillow) → pixel_values [n, channels, size, size] as HF's ViT
    processor makes them: converted to grayscale or RGB, resized (bilinear), x / 255 * 2 - 1."""
    import numpy as np
    import torch

    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise TtgenError("--image needs Pillow (pip install pillow)") from None
    out = []
    for f in files:
        try:
            with Image.open(f) as im:
                im = im.convert("L" if channels == 1 else "RGB").resize(
                    (size, size), Image.BILINEAR
                )
                arr = np.asarray(im, dtype=np.float32)
        except FileNotFoundError:
            raise TtgenError(f"--image {f}: no such file") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise TtgenError(f"--image {f}: not an image Pillow can read ({exc})") from None
        t = torch.from_numpy(arr)
        t = t[None] if channels == 1 else t.permute(2, 0, 1)
        out.append(t / 255.0 * 2 - 1)
    return torch.stack(out)


def default_checkpoint(package: Path) -> Path:
    if Path(package).name.startswith("vit_digits"):
        from ttgen.models.digits import digits_checkpoint

        return digits_checkpoint()
    raise TtgenError(
        f"{package}: give --checkpoint DIR (an HF folder with the weights this package was generated for)"
    )


def classify(package: Path, *, images: list[Path] = (), dataset: str | None = None, checkpoint: Path | None,
             weight_cache: Path, limit: int | None = None, status=lambda _m: None) -> ClassifyResult:  # fmt: skip
    import torch

    if not images and dataset is None:
        raise TtgenError("give --image FILE (repeatable) or --dataset digits")
    if dataset is not None and dataset not in DATASETS:
        raise TtgenError(f"--dataset {dataset}: unknown (known: {', '.join(DATASETS)})")
    status("loading the generated package")
    mods = load_package(package, ("model", "runner", "model_config"))
    cfg = mods["model_config"]
    checkpoint = Path(checkpoint) if checkpoint else default_checkpoint(package)
    status(f"loading the HF checkpoint {checkpoint}")
    from ttgen.models.checkpoint import load_checkpoint

    hf = load_checkpoint(checkpoint)
    c = hf.config
    if (c.hidden_size, c.num_hidden_layers, c.num_labels, c.image_size, c.num_channels) != (
        cfg.DIM, cfg.N_LAYERS, cfg.N_CLASSES, cfg.IMAGE_SIZE, cfg.CHANNELS):  # fmt: skip
        raise TtgenError(f"{checkpoint}: its model is not the one {package} was generated for")
    labels = None
    if dataset is not None:
        from ttgen.models.digits import digits_split

        if (cfg.IMAGE_SIZE, cfg.CHANNELS) != (8, 1):
            raise TtgenError(
                f"--dataset digits: 8x8 grayscale images; {package} takes {cfg.IMAGE_SIZE}x{cfg.IMAGE_SIZE}x{cfg.CHANNELS}"
            )
        *_, pixels, y = digits_split()
        if limit:
            pixels, y = pixels[:limit], y[:limit]
        labels, names = y.tolist(), [f"digits[{i}]" for i in range(len(y))]
    else:
        pixels, names = (
            load_images(list(images), cfg.CHANNELS, cfg.IMAGE_SIZE),
            [Path(f).name for f in images],
        )

    import ttnn

    device = ttnn.open_device(device_id=0, trace_region_size=64 << 20, num_command_queues=2)
    try:
        status(f"converting and caching weights in {weight_cache}")
        start = time.perf_counter()
        model = mods["model"].ImageClassifier(
            device, {k: v.detach() for k, v in hf.state_dict().items()}, weight_cache
        )
        load_seconds = time.perf_counter() - start
        runner = mods["runner"].Runner(model, two_cqs=True)
        status("classifying")
        runner.forward(pixels[: cfg.MAX_BATCH])  # capture the trace (compile run + capture) first
        start = time.perf_counter()
        logits = runner.classify(pixels)
        seconds = time.perf_counter() - start
        runner.release()
    finally:
        ttnn.close_device(device)
    status("HF reference")
    with torch.no_grad():
        hf_logits = hf(pixel_values=pixels).logits
    return ClassifyResult(names, labels, logits.argmax(-1).tolist(), hf_logits.argmax(-1).tolist(), load_seconds,
                          len(names) / seconds if seconds else 0.0)  # fmt: skip
