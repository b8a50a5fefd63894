"""Experience replay (경험 재생): a fixed-size ring buffer of transitions, sampled uniformly.

Training on transitions drawn at random from many past episodes, instead of on the latest ones in order,
breaks the strong correlation between consecutive steps and reuses each transition many times (Lin, 1992;
Mnih et al., 2015).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from nurinet.random import Generator, resolve


class Transition(NamedTuple):
    """One step of experience: in ``obs`` the agent took ``action``, got ``reward`` and saw ``next_obs``.

    ``terminated`` is True when ``next_obs`` is a terminal state (its value is zero). An episode cut off by
    a time limit (gymnasium's ``truncated``) is not terminal: its last state still has a future.
    """

    obs: Any
    action: int
    reward: float
    next_obs: Any
    terminated: bool


class Batch(NamedTuple):
    """A sampled mini-batch: arrays with the batch as their first axis."""

    obs: np.ndarray  # (B, *obs_shape)
    actions: np.ndarray  # (B,) int64
    rewards: np.ndarray  # (B,) float32
    next_obs: np.ndarray  # (B, *obs_shape)
    terminated: np.ndarray  # (B,) float32, 1.0 for a terminal next state


class ReplayBuffer:
    """A ring buffer of the last ``capacity`` transitions, stored in preallocated arrays.

    When full, each new transition overwrites the oldest. :meth:`sample` draws indices uniformly, with
    replacement, from the transitions stored so far.

    Args:
        capacity: Most transitions kept.
        obs_shape: Shape of one observation.
        obs_dtype: dtype the observations are stored in (float32 by default).
        generator: Source of the sampling randomness (the default generator if ``None``).

    Example::

        buffer = ReplayBuffer(10_000, obs_shape=(4,), generator=nt.Generator(0))
        buffer.add(obs, action, reward, next_obs, terminated)
        batch = buffer.sample(64)          # batch.obs has shape (64, 4)
    """

    def __init__(self, capacity: int, obs_shape: int | tuple[int, ...], obs_dtype: Any = np.float32,
                 generator: Generator | None = None) -> None:
        if not isinstance(capacity, (int, np.integer)) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"ReplayBuffer: capacity must be a positive integer, got {capacity!r}")
        self.capacity = int(capacity)
        self.obs_shape = (int(obs_shape),) if isinstance(obs_shape, (int, np.integer)) else tuple(obs_shape)
        self.obs = np.zeros((self.capacity, *self.obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros_like(self.obs)
        self.actions = np.zeros(self.capacity, dtype=np.int64)
        self.rewards = np.zeros(self.capacity, dtype=np.float32)
        self.terminated = np.zeros(self.capacity, dtype=np.float32)
        self.generator = generator
        self.position = 0  # where the next transition goes
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: Any, action: int, reward: float, next_obs: Any, terminated: bool) -> None:
        """Store one transition, overwriting the oldest when the buffer is full."""
        obs, next_obs = np.asarray(obs), np.asarray(next_obs)
        if obs.shape != self.obs_shape or next_obs.shape != self.obs_shape:
            raise ValueError(
                f"ReplayBuffer.add: observations must have shape {self.obs_shape}, got {obs.shape} and "
                f"{next_obs.shape}; build the buffer with the environment's observation_shape"
            )
        i = self.position
        self.obs[i] = obs
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_obs[i] = next_obs
        self.terminated[i] = float(terminated)
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        """``batch_size`` transitions drawn uniformly with replacement."""
        if self.size == 0:
            raise ValueError("ReplayBuffer.sample: the buffer is empty; add transitions first")
        if batch_size < 1:
            raise ValueError(f"ReplayBuffer.sample: batch_size must be positive, got {batch_size}")
        idx = resolve(self.generator).integers(0, self.size, size=batch_size)
        return Batch(self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx],
                     self.terminated[idx])

    def __repr__(self) -> str:
        return f"ReplayBuffer(capacity={self.capacity}, obs_shape={self.obs_shape}, size={self.size})"
