"""Deep Q-networks (DQN): Q-learning with a neural network, experience replay and a target network.

Q-learning learns the action-value function ``Q(s, a)``, the expected discounted return of taking action
``a`` in state ``s`` and acting greedily afterwards, from the Bellman equation
``Q(s, a) = r + gamma * max_a' Q(s', a')``. DQN (Mnih et al., 2015) approximates ``Q`` with a network and
makes this stable with two devices:

- experience replay (경험 재생): updates use mini-batches drawn at random from a buffer of past
  transitions, not the latest correlated steps;
- a target network (타깃 네트워크): the bootstrap term ``max_a' Q(s', a')`` comes from a copy of the
  network that is updated only every ``C`` updates (or slowly, by Polyak averaging), so the regression
  target does not move with every gradient step.

The agent explores epsilon-greedily (엡실론 탐욕): a random action with probability epsilon, which decays
linearly, else the action of highest Q. Double DQN (van Hasselt et al., 2016) picks the next action with the
online network and evaluates it with the target network, which reduces the over-estimation that ``max``
brings.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nurinet import functional as F
from nurinet.autograd import Tensor, no_grad
from nurinet.nn.clip import clip_grad_norm_
from nurinet.nn.module import Module
from nurinet.optim import Adam, Optimizer
from nurinet.random import Generator, resolve
from nurinet.rl.replay import Batch, ReplayBuffer, Transition

LOSSES = ("huber", "mse")


class LinearSchedule:
    """A value that moves linearly from ``start`` to ``end`` over ``steps`` steps, then stays at ``end``.

    ``LinearSchedule(1.0, 0.05, 10_000)(t)`` is the usual epsilon of DQN's exploration at step ``t``.
    """

    def __init__(self, start: float, end: float, steps: int) -> None:
        if steps < 0:
            raise ValueError(f"LinearSchedule: steps must be >= 0, got {steps}")
        self.start, self.end, self.steps = float(start), float(end), int(steps)

    def __call__(self, t: int) -> float:
        if t < 0:
            raise ValueError(f"LinearSchedule: the step must be >= 0, got {t}")
        if self.steps == 0 or t >= self.steps:
            return self.end
        return self.start + (self.end - self.start) * (t / self.steps)

    def __repr__(self) -> str:
        return f"LinearSchedule(start={self.start}, end={self.end}, steps={self.steps})"


def td_targets(rewards: np.ndarray, terminated: np.ndarray, gamma: float, next_q_target: np.ndarray,
               next_q_online: np.ndarray | None = None) -> np.ndarray:
    """The one-step TD targets ``y = r + gamma * (1 - terminated) * Q_target(s', a*)``.

    Args:
        rewards: ``(B,)`` rewards.
        terminated: ``(B,)`` 1 where ``s'`` is terminal (it contributes no future value), else 0.
        gamma: Discount factor.
        next_q_target: ``(B, num_actions)`` target-network values of the next states.
        next_q_online: ``(B, num_actions)`` online-network values of the next states for double DQN, where
            ``a* = argmax_a Q_online(s', a)``; ``None`` for plain DQN, where ``a* = argmax_a Q_target(s', a)``.

    Returns:
        ``(B,)`` targets in the dtype of ``next_q_target``.
    """
    chooser = next_q_target if next_q_online is None else next_q_online
    best = np.argmax(chooser, axis=1)
    next_value = np.take_along_axis(next_q_target, best[:, None], axis=1)[:, 0]
    dtype = next_q_target.dtype
    not_done = 1 - np.asarray(terminated, dtype=dtype)
    return np.asarray(rewards, dtype=dtype) + dtype.type(gamma) * not_done * next_value


class DQNAgent:
    """A DQN agent (에이전트) for environments with discrete actions.

    Args:
        q_network: Maps a batch of observations ``(B, *obs_shape)`` to Q-values ``(B, num_actions)``.
        num_actions: Number of discrete actions.
        gamma: Discount factor of future rewards.
        lr: Learning rate of the default Adam optimizer.
        optimizer: An optimizer over ``q_network.parameters()`` to use instead of Adam.
        batch_size: Transitions per gradient update.
        buffer_size: Capacity of the replay buffer.
        learning_starts: Transitions to collect before the first update.
        train_every: Environment steps between gradient updates in :meth:`train`.
        target_update: Gradient updates between target-network updates (``C``).
        tau: Each target update sets ``target = tau * online + (1 - tau) * target``: 1.0 is the hard
            copy of the DQN paper; a small ``tau`` with ``target_update=1`` is a soft (Polyak) update.
        epsilon_start: Exploration rate at the first step.
        epsilon_end: Exploration rate after the decay.
        epsilon_decay_steps: Environment steps over which epsilon decays linearly.
        double_dqn: Use double DQN's target (online network chooses, target network evaluates).
        loss: ``"huber"`` (the DQN paper's clipped error) or ``"mse"``.
        max_grad_norm: Clip the gradients' total norm to this (``None``: no clipping).
        obs_shape: Shape of one observation; by default taken from the first observed transition.
        generator: Source of exploration, replay sampling and environment seeds (default generator if
            ``None``). The network's initial weights come from whatever built it.

    Example::

        net = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 2))
        agent = DQNAgent(net, num_actions=2, generator=nt.Generator(0))
        returns = agent.train(CartPole(), episodes=300)
    """

    def __init__(self, q_network: Module, num_actions: int, *, gamma: float = 0.99, lr: float = 1e-3,
                 optimizer: Optimizer | None = None, batch_size: int = 64, buffer_size: int = 50_000,
                 learning_starts: int = 1_000, train_every: int = 1, target_update: int = 500,
                 tau: float = 1.0, epsilon_start: float = 1.0, epsilon_end: float = 0.05,
                 epsilon_decay_steps: int = 10_000, double_dqn: bool = False, loss: str = "huber",
                 max_grad_norm: float | None = 10.0, obs_shape: Sequence[int] | None = None,
                 generator: Generator | None = None) -> None:
        if not isinstance(q_network, Module):
            raise TypeError(f"DQNAgent: q_network must be an nn.Module, got {type(q_network).__name__}")
        _check_positive_int(num_actions, "num_actions")
        for name, value in (("batch_size", batch_size), ("buffer_size", buffer_size),
                            ("train_every", train_every), ("target_update", target_update)):
            _check_positive_int(value, name)
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"DQNAgent: gamma must be in [0, 1], got {gamma}")
        if not 0.0 < tau <= 1.0:
            raise ValueError(f"DQNAgent: tau must be in (0, 1] (1.0 is a hard copy), got {tau}")
        if loss not in LOSSES:
            raise ValueError(f"DQNAgent: loss must be one of {LOSSES}, got {loss!r}")
        if learning_starts < 0:
            raise ValueError(f"DQNAgent: learning_starts must be >= 0, got {learning_starts}")
        self.q_network = q_network
        self.target_network = copy.deepcopy(q_network).requires_grad_(False)
        self.num_actions = int(num_actions)
        self.gamma = float(gamma)
        self.optimizer = optimizer if optimizer is not None else Adam(q_network.parameters(), lr=lr)
        self.batch_size = int(batch_size)
        self.buffer_size = int(buffer_size)
        self.learning_starts = int(learning_starts)
        self.train_every = int(train_every)
        self.target_update = int(target_update)
        self.tau = float(tau)
        self.epsilon_schedule = LinearSchedule(epsilon_start, epsilon_end, epsilon_decay_steps)
        self.double_dqn = bool(double_dqn)
        self.loss = loss
        self.max_grad_norm = max_grad_norm
        self.generator = generator
        self.buffer: ReplayBuffer | None = None
        if obs_shape is not None:
            self.buffer = ReplayBuffer(self.buffer_size, tuple(obs_shape), generator=generator)
        self.steps = 0  # transitions observed
        self.updates = 0  # gradient updates made

    # ----- acting --------------------------------------------------------------------------------------
    @property
    def epsilon(self) -> float:
        """The exploration rate at the current step."""
        return self.epsilon_schedule(self.steps)

    def q_values(self, obs: Any) -> np.ndarray:
        """Q-values ``(B, num_actions)`` of a batch of observations, without building a graph."""
        with no_grad():
            out = self.q_network(Tensor(np.asarray(obs, dtype=np.float32)))
        if out.ndim != 2 or out.shape[1] != self.num_actions:
            raise ValueError(f"DQNAgent: q_network returned shape {out.shape}; expected (batch, "
                             f"{self.num_actions}), one Q-value per action")
        return out.array

    def act(self, obs: Any, greedy: bool = False) -> int:
        """The action for one observation: epsilon-greedy, or the argmax of Q when ``greedy``."""
        if not greedy and resolve(self.generator).random() < self.epsilon:
            return int(resolve(self.generator).integers(self.num_actions))
        return int(np.argmax(self.q_values(np.asarray(obs)[None])[0]))

    # ----- learning ------------------------------------------------------------------------------------
    def observe(self, transition: Transition | Sequence[Any]) -> None:
        """Store a transition ``(obs, action, reward, next_obs, terminated)`` and count a step."""
        obs, action, reward, next_obs, terminated = transition
        if not 0 <= int(action) < self.num_actions:
            raise ValueError(f"DQNAgent.observe: action {action} is outside 0..{self.num_actions - 1}")
        if self.buffer is None:
            self.buffer = ReplayBuffer(self.buffer_size, np.shape(obs), generator=self.generator)
        self.buffer.add(obs, int(action), float(reward), next_obs, bool(terminated))
        self.steps += 1

    def compute_targets(self, batch: Batch) -> np.ndarray:
        """The TD targets of a batch (see :func:`td_targets`), from the target (and online) networks."""
        with no_grad():
            next_obs = Tensor(batch.next_obs)
            next_q_target = self.target_network(next_obs).array
            next_q_online = self.q_network(next_obs).array if self.double_dqn else None
        return td_targets(batch.rewards, batch.terminated, self.gamma, next_q_target, next_q_online)

    def loss_on(self, batch: Batch) -> Tensor:
        """The loss between ``Q(s, a)`` of the online network and the TD targets of ``batch``."""
        targets = Tensor(self.compute_targets(batch))
        q = self.q_network(Tensor(batch.obs))
        q_taken = F.take_along_axis(q, batch.actions[:, None], axis=1).reshape(-1)
        if self.loss == "huber":
            return F.huber_loss(q_taken, targets, delta=1.0)
        return F.mse_loss(q_taken, targets)

    def train_step(self) -> float | None:
        """One gradient update on a sampled mini-batch; ``None`` while the buffer is still filling."""
        if self.buffer is None or len(self.buffer) < max(self.learning_starts, self.batch_size):
            return None
        loss = self.loss_on(self.buffer.sample(self.batch_size))
        self.optimizer.zero_grad()
        loss.backward()
        if self.max_grad_norm is not None:
            clip_grad_norm_(self.q_network.parameters(), self.max_grad_norm)
        self.optimizer.step()
        self.updates += 1
        if self.updates % self.target_update == 0:
            self.update_target()
        return loss.item()

    def update_target(self, tau: float | None = None) -> None:
        """Move the target network toward the online one: ``target = tau * online + (1 - tau) * target``."""
        tau = self.tau if tau is None else float(tau)
        online = dict(self.q_network.named_parameters()) | dict(self.q_network.named_buffers())
        for name, target in [*self.target_network.named_parameters(), *self.target_network.named_buffers()]:
            source = online[name].array
            if tau == 1.0 or target.array.dtype.kind not in "fc":  # hard copy (and integer counters)
                target.array[...] = source
            else:
                target.array *= 1.0 - tau
                target.array += tau * source

    # ----- the loop ------------------------------------------------------------------------------------
    def train(self, env: Any, episodes: int | None = None, steps: int | None = None, seed: int | None = None,
              stop: Callable[[list[float]], bool] | None = None) -> list[float]:
        """Interact with ``env`` and learn: act, step, observe, and update every ``train_every`` steps.

        Args:
            env: An environment with gymnasium's API (``reset(seed=)``, ``step`` with 5 results).
            episodes: Stop after this many episodes.
            steps: Stop after this many environment steps (an unfinished episode is not counted).
            seed: Seed of the first ``env.reset``; by default drawn from the agent's generator.
            stop: Called with the returns so far after each episode; training stops when it returns True.

        Returns:
            The return (sum of rewards) of every finished episode.
        """
        if episodes is None and steps is None:
            raise ValueError("DQNAgent.train: give episodes=, steps= or both, to say when to stop")
        if seed is None:
            seed = int(resolve(self.generator).integers(2**31))
        returns: list[float] = []
        step_budget = self.steps + steps if steps is not None else None
        obs, _ = env.reset(seed=seed)
        episode_return = 0.0
        while episodes is None or len(returns) < episodes:
            if step_budget is not None and self.steps >= step_budget:
                break
            action = self.act(obs)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            self.observe(Transition(obs, action, reward, next_obs, terminated))
            if self.steps % self.train_every == 0:
                self.train_step()
            episode_return += float(reward)
            obs = next_obs
            if terminated or truncated:
                returns.append(episode_return)
                if stop is not None and stop(returns):
                    break
                obs, _ = env.reset()
                episode_return = 0.0
        return returns

    def evaluate(self, env: Any, episodes: int = 10, seed: int | None = None) -> list[float]:
        """Returns of ``episodes`` greedy episodes (no exploration, no learning)."""
        _check_positive_int(episodes, "episodes")
        returns = []
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed if episode == 0 else None)
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(self.act(obs, greedy=True))
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
        return returns

    def __repr__(self) -> str:
        return (f"DQNAgent(num_actions={self.num_actions}, gamma={self.gamma}, double_dqn={self.double_dqn}, "
                f"steps={self.steps}, updates={self.updates})")


def _check_positive_int(value: Any, name: str) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"DQNAgent: {name} must be a positive integer, got {value!r}")
