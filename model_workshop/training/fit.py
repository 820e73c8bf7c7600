"""The training knobs and the torch loop that fits a SmallCNN on context crops (train-time only: torch)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from model_workshop.training.model import Augment, SmallCNN, crop_batch, normalise

log = logging.getLogger(__name__)

MEAN = (0.5, 0.5, 0.5)
STD = (0.25, 0.25, 0.25)


@dataclass(frozen=True)
class TrainConfig:
    """Training knobs. Defaults fit a 64 px binary crop classifier trained on 2 CPU cores in minutes."""

    input_size: int = 64
    crop_margin: float = 0.15
    context_margin: float = 0.6
    context_px: int = 112
    epochs: int = 20
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    width: float = 1.0
    label_smoothing: float = 0.05
    class_balance: float = 0.5
    threshold: float | None = 0.5  # None: choose on a validation slice of the train side (binary models)
    validation_fraction: float = 0.15  # only used when threshold is None
    # Lowest threshold the validation slice may choose. The engine returns a cover only at P >= 0.5 as well
    # (Rekognition returns nothing under 50), so a lower card threshold would not be the one that decides.
    min_threshold: float = 0.05
    min_box_px: int = 8
    threads: int = 1  # under CPU contention one thread trains faster than two
    seed: int = 0
    max_train_per_class: int | None = None
    # Per epoch, at most this many crops of each class (a fresh random draw each epoch): bounds CPU time
    # on big classes and balances the classes a little.
    epoch_per_class: int | None = None
    augment: Augment = field(default_factory=Augment)


def train_net(
    contexts: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    config: TrainConfig,
    progress: bool,
    monitor: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[nn.Module, list[float]]:
    """monitor: validation context crops and labels, scored (argmax, no jitter) after each epoch for the log."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    net = SmallCNN(num_classes, width=config.width)
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = (counts.sum() / np.maximum(counts, 1) / num_classes) ** config.class_balance
    criterion = nn.CrossEntropyLoss(
        weight=torch.tensor(weights, dtype=torch.float32), label_smoothing=config.label_smoothing
    )
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    per_epoch = len(labels)
    if config.epoch_per_class is not None:
        per_epoch = int(np.minimum(np.bincount(labels), config.epoch_per_class).sum())
    steps_per_epoch = max(1, math.ceil(per_epoch / config.batch_size))
    total_steps = max(1, config.epochs * steps_per_epoch)
    warmup = max(1, total_steps // 10)

    def schedule(step: int) -> float:  # linear warm-up, then cosine decay to 2 %
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    data = torch.from_numpy(contexts).permute(0, 3, 1, 2).contiguous()
    targets = torch.from_numpy(labels.astype(np.int64))
    crop_fraction = (1 + 2 * config.crop_margin) / (1 + 2 * config.context_margin)
    box_fraction = 1 / (1 + 2 * config.context_margin)
    losses: list[float] = []
    bar = tqdm(range(config.epochs), desc="training", unit="epoch", disable=not progress)
    for _ in bar:
        net.train()
        order = _epoch_order(labels, config.epoch_per_class, generator)
        total, correct, loss_sum = 0, 0, 0.0
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            if len(idx) < 2:
                continue
            batch = crop_batch(data[idx], crop_fraction, box_fraction, config.input_size, config.augment, generator)
            logits = net(normalise(batch, MEAN, STD))
            loss = criterion(logits, targets[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == targets[idx]).sum())
            total += len(idx)
        losses.append(loss_sum / max(total, 1))
        shown = {"loss": f"{losses[-1]:.3f}", "acc": f"{correct / max(total, 1):.3f}"}
        if monitor is not None:
            shown["val_acc"] = f"{_monitor_accuracy(net, monitor, crop_fraction, config.input_size):.3f}"
            log.info("epoch %d/%d %s", len(losses), config.epochs, " ".join(f"{k} {v}" for k, v in shown.items()))
        bar.set_postfix(shown)
    return net.eval(), losses


@torch.no_grad()
def _monitor_accuracy(
    net: nn.Module, monitor: tuple[np.ndarray, np.ndarray], crop_fraction: float, input_size: int
) -> float:
    net.eval()
    contexts, labels = monitor
    data = torch.from_numpy(contexts).permute(0, 3, 1, 2).contiguous()
    predicted = []
    for start in range(0, len(data), 256):
        batch = crop_batch(data[start : start + 256], crop_fraction, 0.0, input_size, None)
        predicted.append(net(normalise(batch, MEAN, STD)).argmax(1))
    net.train()
    return float((torch.cat(predicted).numpy() == labels).mean())


def _epoch_order(labels: np.ndarray, per_class: int | None, generator: torch.Generator) -> torch.Tensor:
    if per_class is None:
        return torch.randperm(len(labels), generator=generator)
    picked = []
    for label in np.unique(labels):
        members = torch.from_numpy(np.flatnonzero(labels == label))
        picked.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    chosen = torch.cat(picked)
    return chosen[torch.randperm(len(chosen), generator=generator)]
