"""Reinforcement learning: the CartPole environment, the replay buffer and the DQN agent."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

import nurinet as nt
from nurinet import nn
from nurinet.rl import (
    CartPole,
    DQNAgent,
    GymnasiumEnv,
    LinearSchedule,
    ReplayBuffer,
    Transition,
    make_env,
    td_targets,
)
from nurinet.rl.replay import Batch

ROOT = Path(__file__).resolve().parents[1]


# ----- CartPole ------------------------------------------------------------------------------------
def florian_step(state, action):
    """One Euler step of the cart-pole equations as Florian (2007) writes them, independently of CartPole."""
    g, m_cart, m_pole, half_len, dt = 9.8, 1.0, 0.1, 0.5, 0.02
    total = m_cart + m_pole
    x, x_dot, th, th_dot = state
    f = 10.0 if action == 1 else -10.0
    th_acc = (g * math.sin(th) + math.cos(th) * (-f - m_pole * half_len * th_dot**2 * math.sin(th)) / total) / (
        half_len * (4.0 / 3.0 - m_pole * math.cos(th) ** 2 / total))
    x_acc = (f + m_pole * half_len * (th_dot**2 * math.sin(th) - th_acc * math.cos(th))) / total
    return np.array([x + dt * x_dot, x_dot + dt * x_acc, th + dt * th_dot, th_dot + dt * th_acc])


def test_cartpole_step_from_rest_matches_hand_computation():
    env = CartPole()
    env.reset(seed=0)
    env.state = np.zeros(4)
    obs, reward, terminated, truncated, info = env.step(1)
    # From rest, pushing right: temp = 10 / 1.1, theta_acc = -temp / (0.5 (4/3 - 0.1/1.1)),
    # x_acc = temp - 0.05 theta_acc / 1.1; positions still use the old (zero) velocities.
    temp = 10 / 1.1
    theta_acc = -temp / (0.5 * (4 / 3 - 0.1 / 1.1))
    x_acc = temp - 0.05 * theta_acc / 1.1
    np.testing.assert_allclose(env.state, [0.0, 0.02 * x_acc, 0.0, 0.02 * theta_acc], rtol=1e-12)
    assert obs.dtype == np.float32 and obs.shape == (4,)
    assert (reward, terminated, truncated, info) == (1.0, False, False, {})


@pytest.mark.parametrize("state", [[0.1, -0.3, 0.08, 0.5], [-1.0, 0.7, -0.15, -1.2]])
@pytest.mark.parametrize("action", [0, 1])
def test_cartpole_dynamics_match_the_equations_of_motion(state, action):
    np.testing.assert_allclose(CartPole.dynamics(np.array(state), action), florian_step(state, action),
                               rtol=1e-12, atol=1e-14)


def test_cartpole_terminates_at_12_degrees_and_at_the_track_edge():
    env = CartPole()
    env.reset(seed=0)
    limit = 12 * 2 * math.pi / 360
    env.state = np.array([0.0, 0.0, limit - 1e-4, 0.1])  # theta' * dt = 0.002 crosses the limit
    assert env.step(1)[2] is True
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)
    env.reset(seed=0)
    env.state = np.array([0.0, 0.0, limit - 1e-2, 0.1])  # still inside after one step
    assert env.step(1)[2] is False
    env.reset(seed=0)
    env.state = np.array([2.39, 1.0, 0.0, 0.0])  # x moves by 0.02 past 2.4
    assert env.step(1)[2] is True
    env.reset(seed=0)
    env.state = np.array([-2.39, -1.0, 0.0, 0.0])
    assert env.step(0)[2] is True


def balance(obs) -> int:
    """A hand-written controller that keeps the pole up: push toward where the pole is falling."""
    return int(obs[2] + 0.5 * obs[3] + 0.01 * obs[0] + 0.1 * obs[1] > 0)


def test_cartpole_truncates_after_500_steps():
    env = make_env("CartPole-v1", backend="builtin")
    obs, _ = env.reset(seed=1)
    for step in range(1, 501):
        obs, _, terminated, truncated, _ = env.step(balance(obs))
        assert not terminated
        assert truncated == (step == 500)
    assert make_env("CartPole-v0", backend="builtin").max_episode_steps == 200


def test_cartpole_reset_is_seeded_and_uniform_in_a_small_box():
    env = CartPole()
    first, info = env.reset(seed=7)
    again, _ = env.reset(seed=7)
    other, _ = env.reset(seed=8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other) and info == {}
    starts = np.array([env.reset()[0] for _ in range(500)])
    assert starts.dtype == np.float32 and np.abs(starts).max() <= 0.05
    assert np.abs(starts).max() > 0.045 and abs(starts.mean()) < 0.01  # fills the box, centred


def test_cartpole_rejects_bad_use():
    env = CartPole()
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)
    env.reset(seed=0)
    for bad in (2, -1, 0.5, True):
        with pytest.raises(ValueError, match="action must be 0"):
            env.step(bad)
    with pytest.raises(ValueError, match="max_episode_steps"):
        CartPole(max_episode_steps=0)


def test_builtin_cartpole_matches_gymnasium_step_for_step():
    gymnasium = pytest.importorskip("gymnasium")
    ours, theirs = CartPole(), gymnasium.make("CartPole-v1")
    for seed in range(4):
        rng = np.random.default_rng(seed)
        obs_a, _ = ours.reset(seed=seed)
        obs_b, _ = theirs.reset(seed=seed)
        np.testing.assert_array_equal(obs_a, obs_b)
        done, steps = False, 0
        while not done:  # random actions until the pole falls; a controller on the last seed (500 steps)
            action = balance(obs_a) if seed == 3 else int(rng.integers(2))
            out_a, out_b = ours.step(action), theirs.step(action)
            np.testing.assert_array_equal(out_a[0], out_b[0])  # bit for bit
            assert out_a[1:4] == out_b[1:4]
            obs_a, done, steps = out_a[0], out_a[2] or out_a[3], steps + 1
        np.testing.assert_array_equal(ours.state, theirs.unwrapped.state)
    assert steps == 500


# ----- make_env and the gymnasium adapter ----------------------------------------------------------
def test_make_env_without_gymnasium_falls_back_to_the_builtin(monkeypatch):
    monkeypatch.setitem(sys.modules, "gymnasium", None)  # import gymnasium now fails
    assert isinstance(make_env("CartPole-v1"), CartPole)
    with pytest.raises(ImportError, match=r"needs gymnasium.*nurinet\[rl\].*CartPole-v1"):
        make_env("MountainCar-v0")
    with pytest.raises(ImportError, match="needs gymnasium"):
        make_env("CartPole-v1", backend="gymnasium")
    with pytest.raises(ValueError, match="no built-in environment named 'Pong'"):
        make_env("Pong", backend="builtin")
    with pytest.raises(ValueError, match="backend must be"):
        make_env("CartPole-v1", backend="torch")


def test_make_env_uses_gymnasium_when_installed():
    pytest.importorskip("gymnasium")
    env = make_env("CartPole-v1")
    assert isinstance(env, GymnasiumEnv)
    assert env.num_actions == 2 and env.observation_shape == (4,)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, CartPole().reset(seed=0)[0])
    obs, reward, terminated, truncated, _ = env.step(np.int64(1))
    assert obs.dtype == np.float32 and isinstance(reward, float) and not terminated and not truncated


def test_gymnasium_adapter_rejects_continuous_actions():
    class Box:
        shape = (1,)

    class Pendulum:
        action_space = Box()

    with pytest.raises(TypeError, match="needs a discrete one"):
        GymnasiumEnv(Pendulum())


def test_importing_nurinet_rl_does_not_import_gymnasium(fresh_python):
    code = "import sys, nurinet, nurinet.rl\nprint('gymnasium' in sys.modules)\n"
    done = fresh_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


# ----- the replay buffer ---------------------------------------------------------------------------
def fill(buffer: ReplayBuffer, n: int) -> None:
    """Transition i has observation (i, i), action i % 2, reward i, next observation (i + 1, i + 1)."""
    for i in range(n):
        buffer.add(np.full(2, i), i % 2, float(i), np.full(2, i + 1), i % 3 == 0)


def test_replay_buffer_wraps_around_and_overwrites_the_oldest():
    buffer = ReplayBuffer(3, obs_shape=(2,))
    fill(buffer, 2)
    assert len(buffer) == 2 and buffer.position == 2
    fill(buffer, 5)  # transitions 0..4 again: 0, 1 land in slots 2, 0; then 2, 3, 4 in slots 1, 2, 0
    assert len(buffer) == 3 and buffer.position == 1
    np.testing.assert_array_equal(buffer.rewards, [4.0, 2.0, 3.0])
    np.testing.assert_array_equal(buffer.obs[:, 0], [4, 2, 3])
    np.testing.assert_array_equal(buffer.next_obs[:, 1], [5, 3, 4])
    np.testing.assert_array_equal(buffer.actions, [0, 0, 1])
    np.testing.assert_array_equal(buffer.terminated, [0.0, 0.0, 1.0])
    assert buffer.obs.dtype == np.float32


def test_replay_buffer_samples_uniformly_from_what_it_holds():
    buffer = ReplayBuffer(10, obs_shape=2, generator=nt.Generator(0))
    fill(buffer, 4)  # slots 4..9 are still empty zeros and must never be drawn
    batch = buffer.sample(4000)
    assert isinstance(batch, Batch) and batch.obs.shape == (4000, 2) and batch.actions.dtype == np.int64
    counts = np.bincount(batch.rewards.astype(int), minlength=4)
    assert counts.sum() == 4000 and len(counts) == 4 and counts.min() > 900  # about 1,000 each
    np.testing.assert_array_equal(batch.next_obs[:, 0], batch.obs[:, 0] + 1)  # rows stay together
    again = ReplayBuffer(10, obs_shape=2, generator=nt.Generator(0))
    fill(again, 4)
    np.testing.assert_array_equal(again.sample(4000).rewards, batch.rewards)


def test_replay_buffer_errors():
    with pytest.raises(ValueError, match="capacity must be a positive integer"):
        ReplayBuffer(0, (2,))
    buffer = ReplayBuffer(4, (2,))
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(1)
    with pytest.raises(ValueError, match=r"must have shape \(2,\)"):
        buffer.add(np.zeros(3), 0, 0.0, np.zeros(3), False)


# ----- targets, target network, exploration --------------------------------------------------------
def linear_agent(double_dqn: bool = False, **kwargs) -> DQNAgent:
    """An agent whose Q-network is one Linear(2, 3) layer with known weights (target: other weights)."""
    net = nn.Linear(2, 3)
    net.weight.array[...] = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    net.bias.array[...] = [0.0, 0.5, -1.0]
    agent = DQNAgent(net, num_actions=3, gamma=0.9, double_dqn=double_dqn, **kwargs)
    agent.target_network.weight.array[...] = [[2.0, 0.0], [0.0, -1.0], [0.5, 0.5]]
    agent.target_network.bias.array[...] = [0.0, 0.0, 1.0]
    return agent


FIXED_BATCH = Batch(
    obs=np.array([[0.0, 0.0], [1.0, 1.0], [2.0, -1.0]], np.float32),
    actions=np.array([0, 2, 1]),
    rewards=np.array([1.0, -1.0, 0.5], np.float32),
    next_obs=np.array([[1.0, 2.0], [3.0, -1.0], [-1.0, 0.0]], np.float32),
    terminated=np.array([0.0, 1.0, 0.0], np.float32),
)


@pytest.mark.parametrize("double_dqn", [False, True])
def test_td_targets_match_a_hand_computation(double_dqn):
    agent = linear_agent(double_dqn)
    s2 = FIXED_BATCH.next_obs.astype(np.float64)
    q_online = s2 @ np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]).T + [0.0, 0.5, -1.0]
    q_target = s2 @ np.array([[2.0, 0.0], [0.0, -1.0], [0.5, 0.5]]).T + [0.0, 0.0, 1.0]
    # q_target rows: [2, -2, 2.5], [6, 1, 2], [-2, 0, 0.5]; q_online rows: [1, 2.5, 2], [3, -0.5, 1], [-1, 0.5, -2]
    if double_dqn:  # the online net picks (actions 1, 0, 1); the target net evaluates
        next_value = np.array([q_target[0, 1], q_target[1, 0], q_target[2, 1]])
        np.testing.assert_allclose(next_value, [-2.0, 6.0, 0.0])
    else:
        next_value = q_target.max(axis=1)
        np.testing.assert_allclose(next_value, [2.5, 6.0, 0.5])
    expected = np.array([1.0 + 0.9 * next_value[0], -1.0, 0.5 + 0.9 * next_value[2]])  # row 1 is terminal
    targets = agent.compute_targets(FIXED_BATCH)
    assert targets.dtype == np.float32
    np.testing.assert_allclose(targets, expected, rtol=1e-6)
    np.testing.assert_allclose(td_targets(FIXED_BATCH.rewards, FIXED_BATCH.terminated, 0.9, q_target,
                                          q_online if double_dqn else None), expected, rtol=1e-12)


@pytest.mark.parametrize("loss", ["huber", "mse"])
def test_loss_compares_q_of_the_taken_actions_with_the_targets(loss):
    agent = linear_agent(loss=loss)
    q = FIXED_BATCH.obs @ agent.q_network.weight.array.T + agent.q_network.bias.array
    error = q[np.arange(3), FIXED_BATCH.actions] - agent.compute_targets(FIXED_BATCH)
    huber = np.where(np.abs(error) < 1, 0.5 * error**2, np.abs(error) - 0.5)
    expected = huber.mean() if loss == "huber" else (error**2).mean()
    value = agent.loss_on(FIXED_BATCH)
    np.testing.assert_allclose(value.item(), expected, rtol=1e-6)
    value.backward()
    assert agent.target_network.weight.grad is None  # no gradient into the target network


def test_target_network_is_a_copy_that_changes_only_on_update():
    net = nn.Sequential(nn.Linear(2, 8, generator=nt.Generator(1)), nn.ReLU(),
                        nn.Linear(8, 2, generator=nt.Generator(2)))
    agent = DQNAgent(net, num_actions=2, batch_size=4, learning_starts=4, target_update=3, lr=0.01,
                     generator=nt.Generator(0))
    online, target = net[0].weight, agent.target_network[0].weight
    assert target is not online and target.array is not online.array
    np.testing.assert_array_equal(target.array, online.array)
    assert not any(p.requires_grad for p in agent.target_network.parameters())
    start = target.array.copy()
    rng = np.random.default_rng(0)
    for _ in range(6):
        agent.observe(Transition(rng.normal(size=2), int(rng.integers(2)), 1.0, rng.normal(size=2), False))
    for update in (1, 2):  # two updates: the online network moves, the target does not
        assert agent.train_step() is not None and agent.updates == update
        np.testing.assert_array_equal(target.array, start)
    assert not np.array_equal(online.array, start)
    agent.train_step()  # the third update copies
    for t, o in zip(agent.target_network.parameters(), net.parameters()):
        np.testing.assert_array_equal(t.array, o.array)


def test_soft_target_update_is_polyak_averaging():
    agent = linear_agent(tau=0.25)
    before = agent.target_network.weight.array.copy()
    agent.update_target()
    np.testing.assert_allclose(agent.target_network.weight.array,
                               0.75 * before + 0.25 * agent.q_network.weight.array, rtol=1e-6)
    agent.update_target(tau=1.0)
    np.testing.assert_array_equal(agent.target_network.bias.array, agent.q_network.bias.array)


def test_train_step_waits_for_learning_starts():
    agent = linear_agent(batch_size=2, learning_starts=3)
    assert agent.train_step() is None
    for i in range(2):
        agent.observe((np.zeros(2), i, 0.0, np.ones(2), False))
    assert agent.train_step() is None and agent.updates == 0
    agent.observe((np.zeros(2), 2, 0.0, np.ones(2), True))
    assert isinstance(agent.train_step(), float) and agent.updates == 1


def test_linear_epsilon_schedule():
    schedule = LinearSchedule(1.0, 0.1, 100)
    assert [schedule(t) for t in (0, 50, 100, 1000)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    assert LinearSchedule(1.0, 0.1, 0)(0) == 0.1
    agent = linear_agent(epsilon_start=1.0, epsilon_end=0.0, epsilon_decay_steps=4)
    for expected in (1.0, 0.75, 0.5, 0.25, 0.0, 0.0):
        assert agent.epsilon == pytest.approx(expected)
        agent.observe((np.zeros(2), 0, 0.0, np.zeros(2), False))


def test_act_is_greedy_or_epsilon_random():
    agent = linear_agent(epsilon_start=1.0, epsilon_end=1.0, generator=nt.Generator(0))
    obs = np.array([0.0, 3.0])  # Q = [0, 3.5, 2]
    assert agent.act(obs, greedy=True) == 1
    counts = np.bincount([agent.act(obs) for _ in range(600)], minlength=3)
    assert counts.min() > 150  # epsilon = 1: every action about a third of the time
    agent.epsilon_schedule = LinearSchedule(0.0, 0.0, 0)
    assert {agent.act(obs) for _ in range(20)} == {1}


def test_agent_argument_errors():
    net = nn.Linear(2, 3)
    with pytest.raises(TypeError, match="nn.Module"):
        DQNAgent(lambda x: x, 3)
    with pytest.raises(ValueError, match="gamma must be in"):
        DQNAgent(net, 3, gamma=1.5)
    with pytest.raises(ValueError, match="tau must be in"):
        DQNAgent(net, 3, tau=0.0)
    with pytest.raises(ValueError, match="loss must be one of"):
        DQNAgent(net, 3, loss="l1")
    with pytest.raises(ValueError, match="target_update must be a positive integer"):
        DQNAgent(net, 3, target_update=0)
    agent = DQNAgent(net, 3)
    with pytest.raises(ValueError, match="outside 0..2"):
        agent.observe((np.zeros(2), 3, 0.0, np.zeros(2), False))
    with pytest.raises(ValueError, match="give episodes=, steps="):
        agent.train(CartPole())
    with pytest.raises(ValueError, match=r"expected \(batch, 2\)"):
        DQNAgent(net, 2).act(np.zeros(2), greedy=True)


# ----- learning -------------------------------------------------------------------------------------
class Chain:
    """A corridor of ``n`` cells: left (0) or right (1). The left end pays 0.1, the right end 1; both end it.

    Starting next to the left end, the small reward is one step away and the large one ``n - 2`` steps away;
    with gamma 0.9 going right is optimal everywhere: ``Q*(s, right) = 0.9 ** (n - 2 - s)``.
    """

    num_actions = 2

    def __init__(self, n: int = 6) -> None:
        self.n, self.observation_shape = n, (n,)

    def _obs(self) -> np.ndarray:
        return np.eye(self.n, dtype=np.float32)[self.pos]

    def reset(self, *, seed=None, options=None):
        self.pos, self.t = 1, 0
        return self._obs(), {}

    def step(self, action):
        self.pos += 1 if action == 1 else -1
        self.t += 1
        reward = 1.0 if self.pos == self.n - 1 else 0.1 if self.pos == 0 else 0.0
        terminated = self.pos in (0, self.n - 1)
        return self._obs(), reward, terminated, self.t >= 30 and not terminated, {}


def chain_agent(seed: int) -> DQNAgent:
    g = nt.Generator(seed)
    net = nn.Sequential(nn.Linear(6, 32, generator=g), nn.ReLU(), nn.Linear(32, 2, generator=g))
    return DQNAgent(net, num_actions=2, gamma=0.9, lr=0.01, batch_size=32, buffer_size=2000,
                    learning_starts=100, target_update=50, epsilon_decay_steps=800, epsilon_end=0.1,
                    generator=g)


@pytest.mark.parametrize("double_dqn", [False, True])
def test_dqn_learns_the_optimal_policy_on_a_chain(double_dqn):
    agent = chain_agent(0)
    agent.double_dqn = double_dqn
    returns = agent.train(Chain(), steps=1000)
    q = agent.q_values(np.eye(6, dtype=np.float32)[1:5])
    assert (q.argmax(axis=1) == 1).all(), q  # right in every non-terminal cell
    np.testing.assert_allclose(q[:, 1], 0.9 ** np.arange(3, -1, -1), atol=0.1)
    assert agent.evaluate(Chain(), episodes=3) == [1.0, 1.0, 1.0]
    assert np.mean(returns[-10:]) > 0.8


def test_training_is_reproducible():
    a, b = chain_agent(3), chain_agent(3)
    assert a.train(Chain(), steps=300) == b.train(Chain(), steps=300)
    for p, q in zip(a.q_network.parameters(), b.q_network.parameters()):
        np.testing.assert_array_equal(p.array, q.array)
    assert a.steps == 300 and a.updates == 201


def test_train_stops_on_episodes_or_the_stop_callback():
    agent = chain_agent(0)
    assert len(agent.train(Chain(), episodes=5)) == 5
    assert len(agent.train(Chain(), episodes=50, stop=lambda r: len(r) == 3)) == 3


# ----- the example -----------------------------------------------------------------------------------
def test_dqn_cartpole_example_quick(tmp_path):
    spec = importlib.util.spec_from_file_location("_example_dqn_cartpole", ROOT / "examples" / "dqn_cartpole.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    result = module.main(["--quick", "--episodes", "8", "--out", str(tmp_path / "r.json")])
    assert result["episodes"] == 8 and len(result["returns"]) == 8 and result["solved"] is False
    assert all(r >= 8 for r in result["returns"]) and len(result["greedy_eval_returns"]) == 10
    assert (tmp_path / "r.json").is_file()
    assert module.solved_at([100.0] * 19 + [200.0] * 20) == 38
    assert module.solved_at([100.0] * 40) is None
