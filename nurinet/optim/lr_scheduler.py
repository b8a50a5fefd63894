"""Learning-rate schedules with PyTorch's API.

Call ``scheduler.step()`` after ``optimizer.step()`` (once per epoch, or once
per batch for OneCycleLR and warm-ups counted in steps). Every scheduler keeps
``last_epoch`` (how many times it stepped), ``base_lrs`` (each group's
``initial_lr``, stored in the group as PyTorch does) and ``get_last_lr()``, and
saves itself with ``state_dict()`` / ``load_state_dict()``.

The epoch-based schedules compute each learning rate in *closed form* from
``base_lrs`` and ``last_epoch`` (``lr = base_lr * gamma ** (epoch // step)``)
rather than multiplying the previous rate as PyTorch's "chainable" form does:
the values are the same for one scheduler, nothing drifts with rounding, and a
restored scheduler is exact. The consequence: two schedulers stepping the same
optimizer do not multiply; compose them with :class:`SequentialLR` or write
one :class:`LambdaLR`.
"""

from __future__ import annotations

import importlib
import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any

from nurinet.names import NameTable
from nurinet.optim.optimizer import Optimizer


def _check_optimizer(optimizer: Any, owner: str) -> Optimizer:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{owner} expects a nurinet Optimizer, got {type(optimizer).__name__}")
    return optimizer


def _per_group(value: Any, optimizer: Optimizer, name: str, owner: str) -> list[Any]:
    """One value per parameter group: a scalar is repeated, a list must match the groups."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{owner}: {name} has {len(value)} value(s) but the optimizer has {n} "
                             "parameter group(s); give one per group or a single number")
        return list(value)
    return [value] * n


def _require_initial_lr(optimizer: Optimizer, owner: str, last_epoch: int) -> None:
    for i, group in enumerate(optimizer.param_groups):
        if "initial_lr" not in group:
            raise KeyError(
                f"{owner}(last_epoch={last_epoch}): param_groups[{i}] has no 'initial_lr'; resume "
                "only with an optimizer restored by load_state_dict, or pass last_epoch=-1 to start "
                "a new schedule"
            )


class LRScheduler:
    """Base class: sets each group's ``lr`` from ``get_lr()`` on every ``step()``.

    A subclass defines ``_closed_form(base_lr, epoch)``, or overrides ``get_lr``.

    Args:
        optimizer: The optimizer whose ``param_groups[i]["lr"]`` are scheduled.
        last_epoch: The index of the last epoch when resuming; -1 (the default)
            starts a new schedule. Resuming needs ``initial_lr`` in every group
            (an optimizer restored with ``load_state_dict`` has it).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        self.optimizer = _check_optimizer(optimizer, type(self).__name__)
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            _require_initial_lr(optimizer, type(self).__name__, last_epoch)
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """Apply the learning rate of the first epoch (the constructor's step)."""
        self._step_count = 0
        self.step()

    def _closed_form(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError

    def get_lr(self) -> list[float]:
        """The learning rate of each group at ``last_epoch``."""
        return [self._closed_form(base, self.last_epoch) for base in self.base_lrs]

    def get_last_lr(self) -> list[float]:
        """The learning rates this scheduler set most recently, one per group."""
        return list(self._last_lr)

    def step(self) -> None:
        """Advance one epoch (or one batch) and set the groups' learning rates."""
        self._step_count += 1
        self._set_epoch(self.last_epoch + 1)

    def _set_epoch(self, epoch: int) -> None:
        self.last_epoch = epoch
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    # Functions (LambdaLR's lambdas) are not plain data, so they are never saved.
    _not_saved: tuple[str, ...] = ("optimizer",)

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's counters and settings (everything but the optimizer) as a dict."""
        return {k: v for k, v in self.__dict__.items() if k not in self._not_saved}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (the optimizer keeps its own lrs)."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"{type(self).__name__}.load_state_dict expects a dict, got "
                            f"{type(state_dict).__name__}")
        self.__dict__.update({k: v for k, v in state_dict.items() if k not in self._not_saved})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self.get_last_lr()})"


class LambdaLR(LRScheduler):
    """``lr = base_lr * lr_lambda(epoch)``.

    Args:
        optimizer: Wrapped optimizer.
        lr_lambda: A function of the epoch returning a factor, or one per group.
        last_epoch: See :class:`LRScheduler`.
    """

    _not_saved = ("optimizer", "lr_lambdas")

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | Sequence[Callable],
                 last_epoch: int = -1) -> None:
        _check_optimizer(optimizer, "LambdaLR")
        self.lr_lambdas = _per_group(lr_lambda, optimizer, "lr_lambda", "LambdaLR")
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise TypeError(f"LambdaLR: lr_lambda must be a function of the epoch, got {fn!r}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * fn(self.last_epoch) for base, fn in zip(self.base_lrs, self.lr_lambdas)]


class StepLR(LRScheduler):
    """``lr = base_lr * gamma ** (epoch // step_size)``: decay by ``gamma`` every ``step_size`` epochs.

    Args:
        optimizer: Wrapped optimizer.
        step_size: Epochs between decays (positive).
        gamma: Multiplicative decay factor.
        last_epoch: See :class:`LRScheduler`.
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got step_size={step_size!r}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def _closed_form(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """``lr = base_lr * gamma ** (number of milestones <= epoch)``.

    Args:
        optimizer: Wrapped optimizer.
        milestones: Epochs at which the rate is multiplied by ``gamma`` (a
            milestone listed twice decays twice, as in PyTorch).
        gamma: Multiplicative decay factor.
        last_epoch: See :class:`LRScheduler`.
    """

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _closed_form(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** bisect_right(self.milestones, epoch)


class ExponentialLR(LRScheduler):
    """``lr = base_lr * gamma ** epoch``.

    Args:
        optimizer: Wrapped optimizer.
        gamma: Multiplicative decay factor per epoch.
        last_epoch: See :class:`LRScheduler`.
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _closed_form(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** epoch


class CosineAnnealingLR(LRScheduler):
    """``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``.

    After ``T_max`` epochs the rate climbs back up (the cosine is periodic), as in PyTorch.

    Args:
        optimizer: Wrapped optimizer.
        T_max: Epochs from ``base_lr`` down to ``eta_min`` (positive).
        eta_min: The lowest learning rate.
        last_epoch: See :class:`LRScheduler`.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        if not T_max > 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got T_max={T_max!r}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def _closed_form(self, base_lr: float, epoch: int) -> float:
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR: cosine annealing restarted every ``T_i`` epochs, with ``T_i`` growing by ``T_mult``.

    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2``,
    where ``T_cur`` counts the epochs since the last restart.

    Args:
        optimizer: Wrapped optimizer.
        T_0: Epochs until the first restart (a positive integer).
        T_mult: Factor by which the period grows after each restart (integer >= 1).
        eta_min: The lowest learning rate.
        last_epoch: See :class:`LRScheduler`.
    """

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1,
                 eta_min: float = 0.0, last_epoch: int = -1) -> None:
        if isinstance(T_0, bool) or not isinstance(T_0, int) or T_0 < 1:
            raise ValueError(f"CosineAnnealingWarmRestarts: T_0 must be a positive integer, got T_0={T_0!r}")
        if isinstance(T_mult, bool) or not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError(f"CosineAnnealingWarmRestarts: T_mult must be an integer >= 1, got "
                             f"T_mult={T_mult!r}")
        self.T_0 = self.T_i = T_0
        self.T_mult, self.eta_min = T_mult, eta_min
        self.T_cur: float = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        cos = (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
        return [self.eta_min + (base - self.eta_min) * cos for base in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:
        """Advance one epoch, or jump to ``epoch`` (fractional epochs allow per-batch steps)."""
        self._step_count += 1
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur -= self.T_i
                self.T_i *= self.T_mult
        else:
            self._locate(epoch)
        LRScheduler._set_epoch(self, math.floor(epoch))

    def _set_epoch(self, epoch: int) -> None:
        # Jumping to an epoch (SequentialLR starting this schedule) must also place T_cur and T_i.
        self._locate(epoch)
        super()._set_epoch(epoch)

    def _locate(self, epoch: float) -> None:
        """Set ``T_i`` and ``T_cur`` for an absolute (possibly fractional) epoch."""
        if epoch < 0:
            raise ValueError(f"CosineAnnealingWarmRestarts: epoch must be >= 0, got {epoch}")
        if epoch < self.T_0:
            self.T_i, self.T_cur = self.T_0, epoch
        elif self.T_mult == 1:
            self.T_i, self.T_cur = self.T_0, epoch % self.T_0
        else:  # restarts at T_0 * (T_mult**n - 1) / (T_mult - 1): solve for the cycle n
            n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
            self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
            self.T_i = self.T_0 * self.T_mult**n


class LinearLR(LRScheduler):
    """Linear warm-up (or decay) of the factor from ``start_factor`` to ``end_factor``.

    ``lr = base_lr * (start_factor + (end_factor - start_factor) * min(epoch, total_iters) / total_iters)``.

    Args:
        optimizer: Wrapped optimizer.
        start_factor: Factor of the first epoch, in (0, 1].
        end_factor: Factor reached after ``total_iters`` epochs, in [0, 1].
        total_iters: Number of epochs of the ramp.
        last_epoch: See :class:`LRScheduler`.
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must lie in (0, 1], got start_factor={start_factor!r}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must lie in [0, 1], got end_factor={end_factor!r}")
        if isinstance(total_iters, bool) or not isinstance(total_iters, int) or total_iters < 1:
            raise ValueError(f"LinearLR: total_iters must be a positive integer, got {total_iters!r}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def _closed_form(self, base_lr: float, epoch: int) -> float:
        progress = min(epoch, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class SequentialLR(LRScheduler):
    """Runs ``schedulers[0]`` until ``milestones[0]``, then ``schedulers[1]`` from its epoch 0, ...

    The usual use: a :class:`LinearLR` warm-up followed by a decay.

    Args:
        optimizer: The optimizer every scheduler wraps.
        schedulers: The schedules in order (not ReduceLROnPlateau).
        milestones: The epochs at which the next scheduler takes over
            (one fewer than the schedulers).
        last_epoch: See :class:`LRScheduler`.
    """

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler],
                 milestones: Sequence[int], last_epoch: int = -1) -> None:
        _check_optimizer(optimizer, "SequentialLR")
        if not schedulers:
            raise ValueError("SequentialLR needs at least one scheduler")
        for i, scheduler in enumerate(schedulers):
            if not isinstance(scheduler, LRScheduler):
                raise TypeError(f"SequentialLR: schedulers[{i}] is a {type(scheduler).__name__}, not an "
                                "LRScheduler (ReduceLROnPlateau needs a metric, so it cannot be sequenced)")
            if scheduler.optimizer is not optimizer:
                raise ValueError(f"SequentialLR: schedulers[{i}] ({type(scheduler).__name__}) wraps another "
                                 "optimizer; all schedulers must wrap the optimizer given to SequentialLR")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: {len(schedulers)} schedulers need {len(schedulers) - 1} "
                             f"milestone(s), got {len(milestones)}")
        self.optimizer = optimizer
        self._schedulers = list(schedulers)
        self._milestones = [int(m) for m in milestones]
        self.last_epoch = last_epoch + 1
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        # Each scheduler's constructor already stepped once: undo, then start the first one.
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for scheduler in self._schedulers:
            scheduler.last_epoch -= 1
        self._schedulers[bisect_right(self._milestones, 0)]._initial_step()
        self._last_lr = self._schedulers[bisect_right(self._milestones, 0)].get_last_lr()

    def step(self) -> None:
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._set_epoch(0)  # the next scheduler starts from its own epoch 0
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    _not_saved = ("optimizer", "_schedulers")

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("_schedulers", [])
        if len(saved) != len(self._schedulers):
            raise ValueError(f"SequentialLR.load_state_dict: the state holds {len(saved)} scheduler(s), "
                             f"this SequentialLR has {len(self._schedulers)}")
        super().load_state_dict(state_dict)
        for scheduler, state in zip(self._schedulers, saved):
            scheduler.load_state_dict(state)


class OneCycleLR(LRScheduler):
    """The 1cycle policy: warm up to ``max_lr``, then anneal far below the start; step every batch.

    Phases (``total_steps`` steps in all): from ``max_lr / div_factor`` up to
    ``max_lr`` over ``pct_start`` of the steps, then down to
    ``initial_lr / final_div_factor``. With ``three_phase`` the second phase
    comes back to ``initial_lr`` symmetrically and a third one anneals to the
    minimum. Momentum (or Adam's beta1) cycles the opposite way when
    ``cycle_momentum``.

    Args:
        optimizer: Wrapped optimizer.
        max_lr: Peak learning rate (or one per group).
        total_steps: Number of steps of the cycle; or give ``epochs`` and ``steps_per_epoch``.
        epochs: Epochs of training (with ``steps_per_epoch``).
        steps_per_epoch: Batches per epoch (with ``epochs``).
        pct_start: Fraction of the steps spent increasing the rate.
        anneal_strategy: ``"cos"`` or ``"linear"``.
        cycle_momentum: Cycle momentum between ``max_momentum`` and ``base_momentum``.
        base_momentum: Lowest momentum (at the peak learning rate).
        max_momentum: Highest momentum (at the start and end).
        div_factor: ``initial_lr = max_lr / div_factor``.
        final_div_factor: ``min_lr = initial_lr / final_div_factor``.
        three_phase: Use the three-phase variant.
        last_epoch: The index of the last *step* when resuming.
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | Sequence[float], total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, last_epoch: int = -1) -> None:
        _check_optimizer(optimizer, "OneCycleLR")
        self.total_steps = _total_steps(total_steps, epochs, steps_per_epoch)
        if not 0.0 <= pct_start <= 1.0:
            raise ValueError(f"OneCycleLR: pct_start must lie in [0, 1], got pct_start={pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy, self.cycle_momentum = anneal_strategy, cycle_momentum
        self.max_lrs = [float(v) for v in _per_group(max_lr, optimizer, "max_lr", "OneCycleLR")]
        if last_epoch == -1:
            for group, peak in zip(optimizer.param_groups, self.max_lrs):
                group["initial_lr"] = peak / div_factor
        else:
            _require_initial_lr(optimizer, "OneCycleLR", last_epoch)
        self.min_lrs = [group["initial_lr"] / final_div_factor for group in optimizer.param_groups]
        self._phases = self._make_phases(pct_start, three_phase)
        if cycle_momentum:
            self._init_momentum(optimizer, base_momentum, max_momentum, last_epoch)
        super().__init__(optimizer, last_epoch)

    def _make_phases(self, pct_start: float, three_phase: bool) -> list[tuple[float, str, str, str, str]]:
        """(end_step, start_lr, end_lr, start_momentum, end_momentum) for each phase."""
        up = float(pct_start * self.total_steps) - 1
        last = self.total_steps - 1
        if three_phase:
            return [(up, "initial", "max", "max", "base"),
                    (float(2 * pct_start * self.total_steps) - 2, "max", "initial", "base", "max"),
                    (last, "initial", "min", "max", "max")]
        return [(up, "initial", "max", "max", "base"), (last, "max", "min", "base", "max")]

    def _init_momentum(self, optimizer: Optimizer, base: float, peak: float, last_epoch: int) -> None:
        if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
            raise ValueError(f"OneCycleLR: cycle_momentum=True needs an optimizer with momentum or betas; "
                             f"{type(optimizer).__name__} has neither (pass cycle_momentum=False)")
        self.use_beta1 = "betas" in optimizer.defaults
        self.base_momentums = [float(v) for v in _per_group(base, optimizer, "base_momentum", "OneCycleLR")]
        self.max_momentums = [float(v) for v in _per_group(peak, optimizer, "max_momentum", "OneCycleLR")]
        if last_epoch == -1:
            for group, value in zip(optimizer.param_groups, self.max_momentums):
                self._set_momentum(group, value)

    def _set_momentum(self, group: dict[str, Any], value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {step} times but total_steps={self.total_steps}; "
                             "make total_steps (or epochs * steps_per_epoch) cover the whole training")
        lrs = []
        for i, group in enumerate(self.optimizer.param_groups):
            values = {"initial": group["initial_lr"], "max": self.max_lrs[i], "min": self.min_lrs[i]}
            start_step = 0.0
            for k, (end_step, lr0, lr1, m0, m1) in enumerate(self._phases):
                if step <= end_step or k == len(self._phases) - 1:
                    pct = (step - start_step) / (end_step - start_step)
                    lrs.append(self._anneal(values[lr0], values[lr1], pct))
                    if self.cycle_momentum:
                        moms = {"base": self.base_momentums[i], "max": self.max_momentums[i]}
                        self._set_momentum(group, self._anneal(moms[m0], moms[m1], pct))
                    break
                start_step = end_step
        return lrs


def _total_steps(total_steps: int | None, epochs: int | None, steps_per_epoch: int | None) -> int:
    if total_steps is not None:
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"OneCycleLR: total_steps must be a positive integer, got {total_steps!r}")
        return total_steps
    if epochs is None or steps_per_epoch is None:
        raise ValueError("OneCycleLR needs total_steps, or both epochs and steps_per_epoch")
    for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"OneCycleLR: {name} must be a positive integer, got {value!r}")
    return epochs * steps_per_epoch


class ReduceLROnPlateau:
    """Multiply the learning rates by ``factor`` when a metric stops improving.

    Call ``scheduler.step(metric)`` once per epoch with the monitored value.
    A value is an improvement when it beats the best so far by ``threshold``:
    relatively (``best * (1 - threshold)`` in min mode) or absolutely
    (``best - threshold``). After more than ``patience`` epochs without
    improvement the rates are reduced (never below ``min_lr``; changes smaller
    than ``eps`` are skipped), and ``cooldown`` epochs follow in which bad
    epochs are not counted.

    Args:
        optimizer: Wrapped optimizer.
        mode: ``"min"`` (a loss) or ``"max"`` (an accuracy).
        factor: Multiplier of the learning rate, in (0, 1).
        patience: Epochs without improvement tolerated before reducing.
        threshold: Smallest change that counts as an improvement.
        threshold_mode: ``"rel"`` or ``"abs"``.
        cooldown: Epochs to wait after a reduction before counting again.
        min_lr: Lower bound on the learning rate (or one per group).
        eps: Smallest reduction actually applied.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | Sequence[float] = 0.0, eps: float = 1e-8) -> None:
        self.optimizer = _check_optimizer(optimizer, "ReduceLROnPlateau")
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must lie in (0, 1), got factor={factor!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got mode={mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        if patience < 0 or cooldown < 0:
            raise ValueError(f"ReduceLROnPlateau: patience and cooldown must be >= 0, got "
                             f"patience={patience!r}, cooldown={cooldown!r}")
        self.min_lrs = [float(v) for v in _per_group(min_lr, optimizer, "min_lr", "ReduceLROnPlateau")]
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.eps = cooldown, eps
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def is_better(self, value: float, best: float) -> bool:
        """Whether ``value`` improves on ``best`` by more than the threshold."""
        if self.mode == "min":
            return value < (best * (1.0 - self.threshold) if self.threshold_mode == "rel"
                            else best - self.threshold)
        return value > (best * (1.0 + self.threshold) if self.threshold_mode == "rel"
                        else best + self.threshold)

    def step(self, metrics: float) -> None:
        """Record this epoch's value of the monitored metric; reduce the rates after a plateau."""
        current = float(metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _reduce_lr(self) -> None:
        for group, floor in zip(self.optimizer.param_groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, floor)
            if old - new > self.eps:
                group["lr"] = new

    def get_last_lr(self) -> list[float]:
        """The learning rates after the last step, one per group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Counters and settings (everything but the optimizer)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.__dict__.update({k: v for k, v in state_dict.items() if k != "optimizer"})


# ----- by name ------------------------------------------------------------------------------
# The schedulers of this module that nurinet.optim exports, by class name with the "LR"
# suffix optional ("step" is StepLR); filled on first lookup, once nurinet.optim is imported.
SCHEDULERS = NameTable("schedule", suffixes=("lr",))


def _is_scheduler_class(obj: Any) -> bool:
    # A class of this module that steps and saves itself (ReduceLROnPlateau is no LRScheduler);
    # LRScheduler is the base of most, not one itself.
    return (isinstance(obj, type) and obj.__module__ == __name__ and obj is not LRScheduler
            and callable(getattr(obj, "step", None)) and callable(getattr(obj, "state_dict", None)))


def _fill_schedulers(table: NameTable) -> None:
    table.add_public(importlib.import_module("nurinet.optim"), _is_scheduler_class)


SCHEDULERS.add_loader(_fill_schedulers)


def get_scheduler(name: str) -> type:
    """The learning-rate scheduler class called ``name``.

    Case, ``_``, ``-`` and spaces are ignored and the ``LR`` suffix is optional:
    ``"StepLR"``, ``"step_lr"`` and ``"step"`` are :class:`StepLR`.

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: no scheduler has that name (the message lists the known names).
    """
    return SCHEDULERS.get(name)
