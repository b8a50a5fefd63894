"""Reinforcement learning (강화학습): environments, experience replay and deep Q-networks.

An agent (에이전트) observes the state (상태) of an environment (환경), takes an action (행동) and receives a
reward (보상); it learns a policy that maximizes the discounted sum of rewards. This package holds:

- ``Catch``, a small game whose observations are screen frames, and ``FrameStack``, which stacks the last
  ``k`` frames as channels (DQN from pixels);
- ``CartPole``, a NumPy copy of gymnasium's ``CartPole-v1``; ``GymnasiumEnv`` and ``make_env`` for any
  gymnasium environment with discrete actions (gymnasium is optional: ``pip install "nurinet[rl]"``);
- ``ReplayBuffer``, the experience replay (경험 재생) ring buffer;
- ``DQNAgent``, deep Q-learning with a target network and epsilon-greedy exploration (and double DQN).

Importing ``nurinet.rl`` does not import gymnasium.
"""

from nurinet.rl.catch import Catch
from nurinet.rl.dqn import DQNAgent, LinearSchedule, td_targets
from nurinet.rl.envs import CartPole, GymnasiumEnv, make_env
from nurinet.rl.replay import Batch, ReplayBuffer, Transition
from nurinet.rl.wrappers import FrameStack

__all__ = [
    "Batch",
    "CartPole",
    "Catch",
    "DQNAgent",
    "FrameStack",
    "GymnasiumEnv",
    "LinearSchedule",
    "ReplayBuffer",
    "Transition",
    "make_env",
    "td_targets",
]
