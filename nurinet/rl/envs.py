"""Environments: a built-in CartPole in NumPy and an adapter for gymnasium environments.

Every environment here follows gymnasium's API, so the agents work with either:

- ``reset(seed=None) -> (observation, info)``;
- ``step(action) -> (observation, reward, terminated, truncated, info)``, where ``terminated`` means the
  episode reached a terminal state (the pole fell) and ``truncated`` that it was cut off by a time limit;
- ``num_actions`` and ``observation_shape`` describe the (discrete) action and observation spaces.

gymnasium is an optional dependency (``pip install "nurinet[rl]"``); it is imported only by
:class:`GymnasiumEnv` and :func:`make_env`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nurinet.random import Generator


class CartPole:
    """The classic cart-pole balancing task, step for step the same as gymnasium's ``CartPole-v1``.

    A pole is hinged on a cart that moves along a frictionless track. Each step the agent pushes the cart
    left (action 0) or right (action 1) with a force of 10 N and receives a reward of +1. The episode
    terminates when the pole leans more than 12 degrees or the cart leaves ``[-2.4, 2.4]``, and is
    truncated after ``max_episode_steps`` steps (500 for v1). The physics (Barto, Sutton and Anderson,
    1983, with the equations of Florian, 2007) are integrated with explicit Euler steps of 0.02 s.

    The initial state is drawn uniformly from ``[-0.05, 0.05]^4`` by a PCG64 generator seeded with
    ``reset(seed=...)``, which is also what gymnasium does, so the same seed gives the same episode.

    Observation: ``(x, x_dot, theta, theta_dot)`` as float32; the state is kept in float64.

    Args:
        max_episode_steps: Steps after which an episode is truncated.
    """

    gravity = 9.8
    masscart = 1.0
    masspole = 0.1
    total_mass = masspole + masscart
    length = 0.5  # half the pole's length
    polemass_length = masspole * length
    force_mag = 10.0
    tau = 0.02  # seconds between state updates
    theta_threshold_radians = 12 * 2 * math.pi / 360
    x_threshold = 2.4

    num_actions = 2
    observation_shape = (4,)

    def __init__(self, max_episode_steps: int = 500) -> None:
        if not isinstance(max_episode_steps, (int, np.integer)) or max_episode_steps < 1:
            raise ValueError(f"CartPole: max_episode_steps must be a positive integer, got {max_episode_steps!r}")
        self.max_episode_steps = int(max_episode_steps)
        self.state: np.ndarray | None = None
        self.elapsed_steps = 0
        self._terminated = False
        self._generator = Generator()

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Start an episode from a random state near upright.

        Args:
            seed: Reseeds the environment's generator; ``None`` continues its stream.
            options: ``{"low": ..., "high": ...}`` bounds of the initial state (default -0.05 and 0.05).

        Returns:
            The first observation and an empty info dict.
        """
        if seed is not None:
            self._generator.manual_seed(seed)
        options = options or {}
        low, high = options.get("low", -0.05), options.get("high", 0.05)
        self.state = self._generator.np.uniform(low=low, high=high, size=(4,))
        self.elapsed_steps = 0
        self._terminated = False
        return self.state.astype(np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Push the cart left (0) or right (1) for one time step.

        Returns:
            ``(observation, reward, terminated, truncated, info)``.
        """
        if self.state is None:
            raise RuntimeError("CartPole.step: call reset() before step()")
        if self._terminated:
            raise RuntimeError("CartPole.step: the episode has terminated; call reset() to start a new one")
        if action not in (0, 1) or isinstance(action, (bool, float, np.floating)):
            raise ValueError(f"CartPole.step: action must be 0 (push left) or 1 (push right), got {action!r}")
        self.state = self.dynamics(self.state, int(action))
        self.elapsed_steps += 1
        x, _, theta, _ = self.state
        terminated = bool(x < -self.x_threshold or x > self.x_threshold
                          or theta < -self.theta_threshold_radians or theta > self.theta_threshold_radians)
        truncated = self.elapsed_steps >= self.max_episode_steps
        self._terminated = terminated
        return self.state.astype(np.float32), 1.0, terminated, truncated, {}

    @classmethod
    def dynamics(cls, state: np.ndarray, action: int) -> np.ndarray:
        """The state one Euler step (0.02 s) after applying ``action`` in ``state`` (float64)."""
        # NumPy float64 scalars and NumPy's cos and sin, in gymnasium's order of operations, so that
        # trajectories agree bit for bit rather than to a few ulps.
        x, x_dot, theta, theta_dot = np.asarray(state, dtype=np.float64)
        force = cls.force_mag if action == 1 else -cls.force_mag
        costheta, sintheta = np.cos(theta), np.sin(theta)
        temp = (force + cls.polemass_length * np.square(theta_dot) * sintheta) / cls.total_mass
        thetaacc = (cls.gravity * sintheta - costheta * temp) / (
            cls.length * (4.0 / 3.0 - cls.masspole * np.square(costheta) / cls.total_mass))
        xacc = temp - cls.polemass_length * thetaacc * costheta / cls.total_mass
        # Explicit Euler: positions move with the old velocities.
        return np.array([x + cls.tau * x_dot, x_dot + cls.tau * xacc,
                         theta + cls.tau * theta_dot, theta_dot + cls.tau * thetaacc], dtype=np.float64)

    def close(self) -> None:
        """Nothing to release (present for gymnasium's API)."""

    def __repr__(self) -> str:
        return f"CartPole(max_episode_steps={self.max_episode_steps})"


class GymnasiumEnv:
    """Wrap a gymnasium environment with a discrete action space for nurinet's agents.

    The wrapped environment keeps gymnasium's ``reset``/``step`` API; the adapter adds ``num_actions`` and
    ``observation_shape``, turns actions into Python ints and observations into float32 arrays.

    Args:
        env: A ``gymnasium.Env`` whose action space is ``Discrete``.
    """

    def __init__(self, env: Any) -> None:
        actions = getattr(env, "action_space", None)
        if actions is None or not hasattr(actions, "n"):
            raise TypeError(
                f"GymnasiumEnv: the environment's action space is {actions!r}; DQN needs a discrete one "
                "(gymnasium.spaces.Discrete)"
            )
        self.env = env
        self.num_actions = int(actions.n)
        self._action_offset = int(getattr(actions, "start", 0))
        self.observation_shape = tuple(env.observation_space.shape)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Reset the wrapped environment; returns ``(observation, info)``."""
        obs, info = self.env.reset(seed=seed, options=options)
        return np.asarray(obs, dtype=np.float32), info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Step the wrapped environment with action ``0 .. num_actions - 1``."""
        obs, reward, terminated, truncated, info = self.env.step(int(action) + self._action_offset)
        return np.asarray(obs, dtype=np.float32), float(reward), bool(terminated), bool(truncated), info

    def close(self) -> None:
        """Close the wrapped environment."""
        self.env.close()

    def __repr__(self) -> str:
        return f"GymnasiumEnv({self.env!r})"


BUILTIN_ENVS = {"CartPole-v1": lambda: CartPole(max_episode_steps=500),
                "CartPole-v0": lambda: CartPole(max_episode_steps=200)}


def make_env(name: str, backend: str = "auto", **kwargs: Any) -> CartPole | GymnasiumEnv:
    """Create an environment by its gymnasium id.

    Args:
        name: A gymnasium id such as ``"CartPole-v1"``.
        backend: ``"auto"`` uses gymnasium when it is installed and the built-in environment otherwise;
            ``"gymnasium"`` requires gymnasium; ``"builtin"`` uses nurinet's own (``CartPole-v0``/``-v1``).
        **kwargs: Passed to ``gymnasium.make`` (gymnasium back end only).

    Returns:
        An environment with gymnasium's ``reset``/``step`` API plus ``num_actions`` and ``observation_shape``.
    """
    if backend not in ("auto", "gymnasium", "builtin"):
        raise ValueError(f"make_env: backend must be 'auto', 'gymnasium' or 'builtin', got {backend!r}")
    gymnasium = None
    if backend != "builtin":
        try:
            import gymnasium
        except ImportError:
            if backend == "gymnasium" or name not in BUILTIN_ENVS:
                raise ImportError(
                    f"make_env({name!r}) needs gymnasium, which is not installed: pip install \"nurinet[rl]\" "
                    f"(built-in environments that need nothing more: {', '.join(sorted(BUILTIN_ENVS))})"
                ) from None
    if gymnasium is not None:
        return GymnasiumEnv(gymnasium.make(name, **kwargs))
    if name not in BUILTIN_ENVS:
        raise ValueError(f"make_env: no built-in environment named {name!r}; the built-ins are "
                         f"{', '.join(sorted(BUILTIN_ENVS))} (or install gymnasium and use backend='auto')")
    if kwargs:
        raise TypeError(f"make_env: the built-in {name} takes no options, got {sorted(kwargs)}")
    return BUILTIN_ENVS[name]()
