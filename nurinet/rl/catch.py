"""Catch: a tiny game rendered to pixels, for learning to play from the screen (as DQN plays Atari).

The game of bsuite's ``catch`` (Osband et al., 2020) and of many small DQN demonstrations: a ball falls from a
random column of the top row of a ``rows x columns`` grid (10 x 5 by default), one row per step; a paddle on the
bottom row moves left, stays or moves right. When the ball reaches the bottom row the episode ends with reward
+1 if the paddle is under it and -1 if not; every other step gives 0. An episode is therefore exactly
``rows - 1`` steps long.

The agent sees only the screen: a ``(rows * scale, columns * scale)`` float32 frame of 0s and 1s with the ball
and the paddle drawn as 1s (one pixel each at ``scale=1``). One frame shows where the ball is, not where it is
going; with ``horizontal=True`` the ball also drifts one column left or right per step (bouncing off the
walls), and a stack of two frames (:class:`nurinet.rl.FrameStack`) shows its direction.
"""

from __future__ import annotations

import numpy as np

from nurinet.random import Generator

LEFT, STAY, RIGHT = 0, 1, 2


class Catch:
    """The Catch game with pixel observations and gymnasium's ``reset``/``step`` API.

    Actions: 0 moves the paddle one column left, 1 keeps it still, 2 moves it one column right (the paddle
    stops at the walls). The ball starts in a uniformly random column of the top row (and, with
    ``horizontal``, a random direction -1 or +1); the paddle starts in the middle column.

    Args:
        rows: Height of the grid (at least 2); an episode is ``rows - 1`` steps.
        columns: Width of the grid (at least 1).
        scale: Each cell is drawn as a ``scale x scale`` block of pixels.
        horizontal: The ball also moves one column sideways per step, bouncing off the walls.

    Attributes:
        num_actions: 3.
        observation_shape: ``(rows * scale, columns * scale)``.
        ball: ``(row, column)`` of the ball; ``paddle``: the paddle's column.

    Example::

        env = Catch()
        frame, info = env.reset(seed=0)              # (10, 5) float32 frame, one ball pixel and the paddle
        frame, reward, terminated, truncated, info = env.step(2)   # move right
    """

    num_actions = 3

    def __init__(self, rows: int = 10, columns: int = 5, scale: int = 1, horizontal: bool = False) -> None:
        for name, value, low in (("rows", rows, 2), ("columns", columns, 1), ("scale", scale, 1)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
                raise ValueError(f"Catch: {name} must be an integer >= {low}, got {value!r}")
        self.rows, self.columns, self.scale = int(rows), int(columns), int(scale)
        self.horizontal = bool(horizontal)
        self.observation_shape = (self.rows * self.scale, self.columns * self.scale)
        self.ball: tuple[int, int] | None = None
        self.ball_direction = 0
        self.paddle = self.columns // 2
        self._done = False
        self._generator = Generator()

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Start an episode: the ball in a random column of the top row, the paddle in the middle.

        Args:
            seed: Reseeds the environment's generator; ``None`` continues its stream.
            options: Unused (present for gymnasium's API).

        Returns:
            The first frame and an empty info dict.
        """
        if seed is not None:
            self._generator.manual_seed(seed)
        rng = self._generator.np
        self.ball = (0, int(rng.integers(self.columns)))
        self.ball_direction = int(rng.choice((-1, 1))) if self.horizontal else 0
        self.paddle = self.columns // 2
        self._done = False
        return self.render(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Move the paddle (0 left, 1 stay, 2 right), then let the ball fall one row.

        Returns:
            ``(frame, reward, terminated, truncated, info)``: the reward is +1 or -1 on the step the ball
            reaches the bottom row (which ends the episode), else 0; ``truncated`` is always False.
        """
        if self.ball is None:
            raise RuntimeError("Catch.step: call reset() before step()")
        if self._done:
            raise RuntimeError("Catch.step: the episode has ended; call reset() to start a new one")
        if isinstance(action, (bool, float, np.floating)) or action not in (LEFT, STAY, RIGHT):
            raise ValueError(f"Catch.step: action must be 0 (left), 1 (stay) or 2 (right), got {action!r}")
        self.paddle = min(max(self.paddle + int(action) - 1, 0), self.columns - 1)
        row, column = self.ball
        if self.horizontal and self.columns > 1:
            if not 0 <= column + self.ball_direction < self.columns:
                self.ball_direction = -self.ball_direction
            column += self.ball_direction
        self.ball = (row + 1, column)
        reward = 0.0
        if self.ball[0] == self.rows - 1:
            self._done = True
            reward = 1.0 if column == self.paddle else -1.0
        return self.render(), reward, self._done, False, {}

    def render(self) -> np.ndarray:
        """The current frame: ``observation_shape`` float32, 1 at the ball and the paddle, 0 elsewhere."""
        grid = np.zeros((self.rows, self.columns), dtype=np.float32)
        if self.ball is not None:
            grid[self.ball] = 1.0
        grid[self.rows - 1, self.paddle] = 1.0
        if self.scale > 1:
            grid = np.kron(grid, np.ones((self.scale, self.scale), dtype=np.float32))
        return grid

    def close(self) -> None:
        """Nothing to release (present for gymnasium's API)."""

    def __repr__(self) -> str:
        return (f"Catch(rows={self.rows}, columns={self.columns}, scale={self.scale}, "
                f"horizontal={self.horizontal})")
