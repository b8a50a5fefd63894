"""Environment wrappers: frame stacking, as DQN uses on screen frames.

One screen frame shows where things are but not where they are going. DQN (Mnih et al., 2015) feeds the
network the last ``k`` frames stacked as channels (4 on Atari), so a convolution sees the motion.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np


class FrameStack:
    """Keep the last ``k`` frames of an environment and return them stacked as channels ``(k, H, W)``.

    After ``reset`` the first frame is repeated ``k`` times; each ``step`` drops the oldest frame and appends
    the new one (the newest is the last channel). The wrapped environment needs gymnasium's
    ``reset``/``step`` API and ``num_actions``; its frames may be ``(H, W)`` or ``(C, H, W)`` (the channels of
    the ``k`` frames are then concatenated, ``(k * C, H, W)``).

    Args:
        env: The environment to wrap.
        k: Number of frames to keep.

    Attributes:
        num_actions: That of the wrapped environment.
        observation_shape: ``(k, H, W)`` (or ``(k * C, H, W)``).

    Example::

        env = FrameStack(Catch(horizontal=True), k=2)
        obs, info = env.reset(seed=0)               # (2, 10, 5): the previous and the current frame
    """

    def __init__(self, env: Any, k: int = 4) -> None:
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ValueError(f"FrameStack: k must be a positive integer, got {k!r}")
        self.env = env
        self.k = int(k)
        self.num_actions = env.num_actions
        shape = tuple(env.observation_shape)
        if len(shape) not in (2, 3):
            raise ValueError(f"FrameStack: frames must be (H, W) or (C, H, W), got observation_shape {shape}")
        channels = 1 if len(shape) == 2 else shape[0]
        self.observation_shape = (self.k * channels, *shape[-2:])
        self._frames: deque[np.ndarray] = deque(maxlen=self.k)

    def _frame(self, frame: Any) -> np.ndarray:
        frame = np.asarray(frame, dtype=np.float32)
        return frame[None] if frame.ndim == 2 else frame

    def _observation(self) -> np.ndarray:
        return np.concatenate(list(self._frames), axis=0)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Reset the wrapped environment; the first frame fills all ``k`` slots."""
        frame, info = self.env.reset(seed=seed, options=options)
        frame = self._frame(frame)
        self._frames.clear()
        self._frames.extend(frame for _ in range(self.k))
        return self._observation(), info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Step the wrapped environment and push its new frame onto the stack."""
        frame, reward, terminated, truncated, info = self.env.step(action)
        self._frames.append(self._frame(frame))
        return self._observation(), reward, terminated, truncated, info

    def close(self) -> None:
        """Close the wrapped environment."""
        self.env.close()

    def __repr__(self) -> str:
        return f"FrameStack({self.env!r}, k={self.k})"
