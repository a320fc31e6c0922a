"""Which weights the final evaluation scores: ``train.keep`` = last | best_probe | best_eval_loss.

    keeper = Keeper("best_probe", model, work_dir=...)
    keeper.observe(step, eval_loss=..., probe=ProbeScore)   # at every evaluation during training
    kept = keeper.finish(final_step)                          # restores the kept weights when earlier

``best_probe`` switches to a later checkpoint only when its probe pass@1 beats the kept one's by
more than one standard error of the paired difference over the probe's tasks (a 24-task probe
moves by a task or two between checkpoints of equal quality: that must not count as better).
``best_eval_loss`` switches on any lower eval loss (one fixed validation set, no sampling noise).
The kept weights are the trainable parameters: an in-memory copy for adapters, a safetensors
file in the training work dir for larger ones (full fine-tuning of a real model).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.probe import ProbeScore, paired_gain

__all__ = ["KEEP_POLICIES", "Kept", "Keeper"]

KEEP_POLICIES = ("last", "best_probe", "best_eval_loss")
IN_MEMORY_MAX_BYTES = 2 * 2**30  # a copy of trainable weights above this goes to disk


@dataclass(frozen=True)
class Kept:
    step: int
    reason: str
    eval_loss: float | None
    probe: ProbeScore | None
    restored: bool  # the final weights were replaced by an earlier checkpoint's


class Keeper:
    def __init__(self, policy: str, model, *, work_dir: Path, in_memory_max_bytes: int = IN_MEMORY_MAX_BYTES):
        if policy not in KEEP_POLICIES:
            raise ValueError(f"unknown keep policy {policy!r}; choose one of {KEEP_POLICIES}")
        self.policy, self.model, self.work_dir, self.in_memory_max = policy, model, work_dir, in_memory_max_bytes
        self.step: int | None = None
        self.eval_loss: float | None = None
        self.probe: ProbeScore | None = None
        self.why = ""
        self.last: tuple[int, float | None, ProbeScore | None] | None = None  # the latest evaluation seen
        self._state: dict[str, Any] | Path | None = None

    # -- the decision ---------------------------------------------------------------------------

    def observe(self, step: int, *, eval_loss: float | None = None, probe: ProbeScore | None = None) -> bool:
        """Note an evaluation of the current weights; returns True when they become the kept ones."""
        self.last = (step, eval_loss, probe)
        if self.policy == "last":
            return False
        if self.policy == "best_eval_loss":
            if eval_loss is None or (self.eval_loss is not None and eval_loss >= self.eval_loss):
                return False
            self.why = (f"lowest eval loss {eval_loss:.4f}" if self.step is None
                        else f"eval loss {eval_loss:.4f} below step {self.step}'s {self.eval_loss:.4f}")
        else:
            if probe is None:
                return False
            if self.probe is not None:
                gain, se = paired_gain(self.probe.per_task, probe.per_task)
                if gain <= se + 1e-9:  # exactly one se (one task more, none lost) is not more than the noise
                    return False
                self.why = (f"probe pass@1 {probe.pass_at_1:.3f} beat step {self.step}'s {self.probe.pass_at_1:.3f} "
                            f"by {gain:+.3f}, more than one paired standard error ({se:.3f})")
            else:
                self.why = f"first probe: pass@1 {probe.pass_at_1:.3f} (se {probe.se:.3f})"
        self.step, self.eval_loss, self.probe = step, eval_loss, probe
        self._snapshot()
        return True

    def finish(self, final_step: int) -> Kept:
        """The kept checkpoint, with the final weights replaced by it when it is an earlier one."""
        last_step, last_loss, last_probe = self.last if self.last and self.last[0] == final_step else (final_step, None, None)
        if self.policy == "last" or self.step is None or self.step == final_step:
            reason = ("train.keep=last: the final weights" if self.policy == "last" else
                      f"train.keep={self.policy}: the final weights ({self.why or 'no earlier evaluation was better'})")
            self._drop()
            return Kept(final_step, reason, last_loss, last_probe, restored=False)
        later = ""
        if self.policy == "best_probe" and last_probe is not None and self.probe is not None:
            gain, se = paired_gain(self.probe.per_task, last_probe.per_task)
            later = f"; the final step's pass@1 {last_probe.pass_at_1:.3f} ({gain:+.3f}, se {se:.3f}) did not beat it by more than its noise"
        elif self.policy == "best_eval_loss" and last_loss is not None:
            later = f"; the final step's eval loss is {last_loss:.4f}"
        self._restore()
        return Kept(self.step, f"train.keep={self.policy}: step {self.step}, {self.why}{later}", self.eval_loss, self.probe, restored=True)

    # -- the weights ----------------------------------------------------------------------------

    def _trainable(self):
        return [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]

    def _snapshot(self) -> None:
        params = self._trainable()
        size = sum(p.numel() * p.element_size() for _, p in params)
        if size <= self.in_memory_max:
            self._state = {n: p.detach().to("cpu", copy=True) for n, p in params}
            return
        from safetensors.torch import save_file

        self.work_dir.mkdir(parents=True, exist_ok=True)
        path = self.work_dir / "kept.safetensors"
        save_file({n: p.detach().contiguous().cpu() for n, p in params}, str(path))
        self._state = path

    def _restore(self) -> None:
        import torch

        state: dict[str, Any]
        if isinstance(self._state, Path):
            from safetensors.torch import load_file

            state = load_file(str(self._state))
        else:
            assert self._state is not None  # _restore follows a _save
            state = self._state
        with torch.no_grad():
            for n, p in self._trainable():
                p.copy_(state[n].to(p.device))
        self._drop()

    def _drop(self) -> None:
        if isinstance(self._state, Path):
            self._state.unlink(missing_ok=True)
        self._state = None
