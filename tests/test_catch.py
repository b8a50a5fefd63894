"""Catch (a game rendered to pixels), the frame-stack wrapper, and DQN from pixels on them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from nurinet import threads
from nurinet.rl import Catch, FrameStack

ROOT = Path(__file__).resolve().parent.parent
LEFT, STAY, RIGHT = 0, 1, 2


def load_example():
    spec = importlib.util.spec_from_file_location("dqn_catch_pixels", ROOT / "examples" / "dqn_catch_pixels.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def play(env: Catch, policy) -> tuple[list[np.ndarray], list[float], int]:
    """Frames, rewards and step count of one episode under ``policy(env) -> action``."""
    frames, rewards, done, steps = [], [], False, 0
    while not done:
        frame, reward, terminated, truncated, _ = env.step(policy(env))
        assert not truncated
        frames.append(frame)
        rewards.append(reward)
        done = terminated
        steps += 1
    return frames, rewards, steps


def chase(env: Catch) -> int:
    """Move the paddle toward the ball's column."""
    column = env.ball[1]
    return STAY if column == env.paddle else (LEFT if column < env.paddle else RIGHT)


def flee(env: Catch) -> int:
    """Move the paddle away from the ball's column."""
    return LEFT if env.ball[1] > env.paddle or (env.ball[1] == env.paddle and env.paddle > 0) else RIGHT


@pytest.mark.parametrize("rows,columns", [(10, 5), (6, 3), (2, 1)])
def test_catching_gives_plus_one_after_rows_minus_one_steps(rows, columns):
    env = Catch(rows=rows, columns=columns)
    for seed in range(10):
        env.reset(seed=seed)
        _, rewards, steps = play(env, chase)
        assert steps == rows - 1
        assert rewards[:-1] == [0.0] * (rows - 2) and rewards[-1] == 1.0


def test_missing_gives_minus_one():
    env = Catch()
    for seed in range(10):
        env.reset(seed=seed)
        _, rewards, steps = play(env, flee)
        assert steps == 9
        assert rewards[-1] == -1.0 and not any(rewards[:-1])


def test_frames_show_one_ball_pixel_and_the_paddle():
    env = Catch()
    frame, info = env.reset(seed=3)
    assert info == {} and frame.shape == (10, 5) == env.observation_shape and frame.dtype == np.float32
    ball_column = env.ball[1]
    for t in range(8):  # before the ball reaches the bottom row
        assert set(np.unique(frame)) <= {0.0, 1.0}
        assert frame.sum() == 2.0
        assert frame[:-1].sum() == 1.0 and frame[t, ball_column] == 1.0  # the ball, one row lower each step
        assert frame[-1].sum() == 1.0 and frame[-1, env.paddle] == 1.0  # the paddle
        frame, *_ = env.step(RIGHT)
    frame, _, terminated, _, _ = env.step(STAY)
    assert terminated and frame[:-1].sum() == 0.0 and frame[-1, ball_column] == 1.0


def test_paddle_moves_and_stops_at_the_walls():
    env = Catch(columns=5)
    env.reset(seed=0)
    assert env.paddle == 2
    for expected in (1, 0, 0):
        env.step(LEFT)
        assert env.paddle == expected
    for expected in (1, 2, 3, 4, 4):
        env.step(RIGHT)
        assert env.paddle == expected


def test_scale_upsamples_the_frame():
    small, big = Catch(), Catch(scale=3)
    a, _ = small.reset(seed=5)
    b, _ = big.reset(seed=5)
    assert b.shape == (30, 15) == big.observation_shape
    np.testing.assert_array_equal(b, np.kron(a, np.ones((3, 3), dtype=np.float32)))


def test_seeding_is_reproducible():
    def columns(seed, episodes=20):
        env = Catch()
        env.reset(seed=seed)
        starts = []
        for _ in range(episodes):
            starts.append(env.ball[1])
            play(env, lambda e: STAY)
            env.reset()
        return starts

    assert columns(7) == columns(7)
    assert columns(7) != columns(8)
    assert set(columns(0, 200)) == set(range(5))  # every column is a possible start


def test_horizontal_ball_moves_one_column_per_step_and_bounces():
    env = Catch(horizontal=True)
    env.reset(seed=1)
    previous = env.ball
    for _ in range(9):
        env.step(STAY)
        assert env.ball[0] == previous[0] + 1 and abs(env.ball[1] - previous[1]) == 1
        assert 0 <= env.ball[1] < 5
        previous = env.ball


def test_bad_use_is_refused():
    env = Catch()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(STAY)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(3)
    play(env, chase)
    with pytest.raises(RuntimeError, match="ended"):
        env.step(STAY)
    with pytest.raises(ValueError, match="rows"):
        Catch(rows=1)


def test_frame_stack_shapes_and_order():
    env = FrameStack(Catch(horizontal=True), k=2)
    assert env.num_actions == 3 and env.observation_shape == (2, 10, 5)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 10, 5) and obs.dtype == np.float32
    np.testing.assert_array_equal(obs[0], obs[1])  # the first frame fills both slots
    previous = obs[1]
    obs, *_ = env.step(STAY)
    np.testing.assert_array_equal(obs[0], previous)  # oldest first, newest last
    np.testing.assert_array_equal(obs[1], env.env.render())
    assert not np.array_equal(obs[0], obs[1])  # the ball moved: its direction is visible


def test_frame_stack_of_channel_frames_and_k():
    class Colour:
        num_actions, observation_shape = 2, (3, 4, 4)

        def reset(self, *, seed=None, options=None):
            self.t = 0
            return np.zeros((3, 4, 4)), {}

        def step(self, action):
            self.t += 1
            return np.full((3, 4, 4), self.t), 0.0, False, False, {}

    env = FrameStack(Colour(), k=4)
    assert env.observation_shape == (12, 4, 4)
    env.reset()
    for _ in range(5):
        obs, *_ = env.step(0)
    assert obs.shape == (12, 4, 4) and obs[::3, 0, 0].tolist() == [2, 3, 4, 5]
    with pytest.raises(ValueError, match="k must"):
        FrameStack(Catch(), k=0)


def test_dqn_from_pixels_beats_the_random_policy():
    """A short training run (3,000 steps, about 6 s) catches far more often than chance.

    With these settings seeds 0 to 4 all reached a greedy mean of +1.0 (every ball caught) in trials."""
    example = load_example()
    env = example.make_env()
    agent = example.build_agent(env, seed=0, epsilon_decay_steps=1_500)
    with threads.limit_threads(1):  # the matrices are small; more threads only slow a busy machine down
        returns = agent.train(env, steps=3_000, seed=0)
    assert returns and agent.updates == 2_501
    greedy = float(np.mean(agent.evaluate(env, episodes=100, seed=1000)))
    random = float(np.mean(example.random_returns(env, 100, seed=1000)))
    assert -0.8 < random < -0.4  # a random paddle is under the ball about 1 time in 5
    assert greedy > random + 0.5


def test_example_writes_its_result(tmp_path):
    example = load_example()
    out = tmp_path / "catch.json"
    result = example.main(["--quick", "--steps", "600", "--out", str(out)])
    assert out.exists() and result["quick"] and result["env_steps"] == 600
    assert result["observation_shape"] == [2, 10, 5]
    evaluation = result["evaluation"]
    assert len(result["greedy_eval_returns"]) == len(result["random_eval_returns"]) == evaluation["episodes"]
    assert set(result["random_eval_returns"]) <= {-1.0, 1.0}
    assert len(example.moving_mean([1.0, -1.0, 1.0], window=2)) == 3
