"""Train a deep Q-network to play Catch from its screen frames (DQN from pixels).

Environment: ``nurinet.rl.Catch``, a 10 x 5 grid (rows x columns) drawn as a (10, 5) frame of 0s and 1s: a ball
falls from a random column of the top row, one row per step, and the paddle on the bottom row moves left, stays
or moves right; +1 if the paddle catches the ball, -1 if not, after exactly 9 steps. ``FrameStack(k=2)`` gives
the network the last two frames as channels, (2, 10, 5), so the ball's direction is visible (``--horizontal``
lets the ball drift sideways and bounce off the walls, where that matters).

Agent: ``nurinet.rl.DQNAgent`` with a convolutional Q-network, Conv2d(2, 16, 3) - ReLU - Conv2d(16, 32, 3) -
ReLU - Flatten - Linear(192, 64) - ReLU - Linear(64, 3); Adam (lr 1e-3), the Huber loss, gradients clipped to
norm 10, a replay buffer of 10,000 transitions, mini-batches of 32 from the 500th step on, one update per
step, a hard target-network copy every 200 updates, epsilon from 1.0 to 0.05 over 5,000 steps, gamma 0.99.

Training stops when the mean return of the last 100 episodes reaches 0.8 (at least 90% caught) or when the
step or time budget runs out. Then the greedy policy and a uniformly random policy each play 200 episodes
from the same seeds. The result (settings, every training episode's return, both evaluations) is written as
JSON to ``examples/results/``, with the learning curve as a PNG when matplotlib is installed.

Usage::

    python examples/dqn_catch_pixels.py               # full run (at most 30,000 steps or 240 s)
    python examples/dqn_catch_pixels.py --horizontal  # the ball also moves sideways
    python examples/dqn_catch_pixels.py --quick       # smoke test (under 20 s)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so that the example runs from a checkout without installing nurinet

import nurinet as nt
from examples import _common as common
from nurinet import nn
from nurinet.rl import Catch, DQNAgent, FrameStack

WINDOW, TARGET_MEAN = 100, 0.8
EVAL_EPISODES = 200


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizontal", action="store_true", help="the ball also moves one column sideways per step")
    parser.add_argument("--steps", type=int, default=30_000, help="environment step budget")
    parser.add_argument("--seconds", type=float, default=240.0, help="time budget")
    common.add_run_options(parser, seed="the Q-network, the agent and the episodes", quick="3,000 steps or 15 s",
                           out="dqn_catch_pixels[_horizontal][_quick].json",
                           threads_help=common.SMALL_STEPS)
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.seconds = min(args.steps, 3_000), min(args.seconds, 15.0)
    return args


def make_env(horizontal: bool = False) -> FrameStack:
    """Catch (10 x 5) with the last two frames stacked: observations of shape (2, 10, 5)."""
    return FrameStack(Catch(rows=10, columns=5, horizontal=horizontal), k=2)


def build_q_network(observation_shape: Sequence[int], num_actions: int, generator: nt.Generator) -> nn.Module:
    """Two 3x3 convolutions (no padding), then a 64-unit hidden layer and one output per action."""
    channels, height, width = observation_shape
    flat = 32 * (height - 4) * (width - 4)
    return nn.Sequential(nn.Conv2d(channels, 16, 3, generator=generator), nn.ReLU(),
                         nn.Conv2d(16, 32, 3, generator=generator), nn.ReLU(), nn.Flatten(),
                         nn.Linear(flat, 64, generator=generator), nn.ReLU(),
                         nn.Linear(64, num_actions, generator=generator))


SETTINGS: dict[str, Any] = {"gamma": 0.99, "lr": 1e-3, "batch_size": 32, "buffer_size": 10_000,
                            "learning_starts": 500, "train_every": 1, "target_update": 200, "tau": 1.0,
                            "epsilon_start": 1.0, "epsilon_end": 0.05, "epsilon_decay_steps": 5_000,
                            "double_dqn": False, "loss": "huber", "max_grad_norm": 10.0}


def build_agent(env: FrameStack, seed: int, **overrides: Any) -> DQNAgent:
    """The Q-network and the agent, both seeded from ``seed``; ``overrides`` replace entries of SETTINGS."""
    generator = nt.Generator(seed)
    q_network = build_q_network(env.observation_shape, env.num_actions, generator)
    return DQNAgent(q_network, num_actions=env.num_actions, generator=generator, **(SETTINGS | overrides))


def random_returns(env: Any, episodes: int, seed: int) -> list[float]:
    """Returns of a uniformly random policy over ``episodes`` episodes (the first reset seeded with ``seed``)."""
    rng = np.random.default_rng(seed)
    returns = []
    for episode in range(episodes):
        env.reset(seed=seed if episode == 0 else None)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(int(rng.integers(env.num_actions)))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def moving_mean(returns: Sequence[float], window: int = WINDOW) -> list[float]:
    """The mean of the last ``window`` returns (fewer at the start) after each episode."""
    cumulative = np.concatenate([[0.0], np.cumsum(returns)])
    ends = np.arange(1, len(returns) + 1)
    starts = np.maximum(0, ends - window)
    return list((cumulative[ends] - cumulative[starts]) / (ends - starts))


def save_curve(returns: list[float], greedy_mean: float, random_mean: float, path: Path) -> bool:
    """Plot the moving mean of the returns with the two evaluations; False when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    episodes = np.arange(1, len(returns) + 1)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(episodes, moving_mean(returns), label=f"training: mean of the last {WINDOW} episodes")
    ax.axhline(greedy_mean, color="tab:green", linestyle="--",
               label=f"greedy policy, {EVAL_EPISODES} episodes ({greedy_mean:+.2f})")
    ax.axhline(random_mean, color="tab:red", linestyle=":",
               label=f"random policy, {EVAL_EPISODES} episodes ({random_mean:+.2f})")
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("episode")
    ax.set_ylabel("return (+1 caught, -1 missed)")
    ax.set_title("DQN from pixels on Catch (10 x 5, 2 stacked frames)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    env = make_env(args.horizontal)
    agent = build_agent(env, args.seed)
    start = time.perf_counter()

    stop = common.stop_at_mean(agent, WINDOW, TARGET_MEAN, args.seconds, every=200, value_format="+.2f")

    with common.blas_threads(args.threads):
        returns = agent.train(env, steps=args.steps, seed=args.seed, stop=stop)
        seconds = time.perf_counter() - start
        greedy = agent.evaluate(env, episodes=EVAL_EPISODES, seed=args.seed + 1000)
    random = random_returns(env, EVAL_EPISODES, seed=args.seed + 1000)
    last = float(np.mean(returns[-WINDOW:])) if returns else float("nan")
    result = {
        "environment": f"nurinet.rl.Catch(rows=10, columns=5, horizontal={args.horizontal}) + FrameStack(k=2)",
        "observation_shape": list(env.observation_shape), "seed": args.seed, "quick": args.quick,
        "network": "Conv2d(2,16,3)-ReLU-Conv2d(16,32,3)-ReLU-Flatten-Linear(192,64)-ReLU-Linear(64,3)",
        "settings": SETTINGS, "budget": {"steps": args.steps, "seconds": args.seconds},
        "stop_criterion": f"mean return of the last {WINDOW} episodes >= {TARGET_MEAN}",
        "reached": len(returns) >= WINDOW and last >= TARGET_MEAN,
        "episodes": len(returns), "env_steps": agent.steps, "gradient_updates": agent.updates,
        "seconds": round(seconds, 1), "last_100_mean": round(last, 3),
        "evaluation": {"episodes": EVAL_EPISODES, "seed": args.seed + 1000,
                       "greedy_mean": float(np.mean(greedy)), "random_mean": float(np.mean(random)),
                       "greedy_catch_rate": float(np.mean(np.asarray(greedy) > 0)),
                       "random_catch_rate": float(np.mean(np.asarray(random) > 0))},
        "greedy_eval_returns": greedy, "random_eval_returns": random, "returns": returns,
    }
    stem = f"dqn_catch_pixels{'_horizontal' if args.horizontal else ''}"
    out = common.write_result(result, args.out, common.result_name(stem, args.quick))
    plotted = save_curve(returns, float(np.mean(greedy)), float(np.mean(random)), out.with_suffix(".png"))
    print(f"{len(returns)} episodes, {agent.steps} steps, {seconds:.1f} s; mean of the last {WINDOW}: {last:+.2f}")
    print(f"greedy policy {np.mean(greedy):+.3f} against random {np.mean(random):+.3f} over {EVAL_EPISODES} "
          f"episodes each")
    print(f"wrote {out}" + (f" and {out.with_suffix('.png')}" if plotted else ""))
    return result


if __name__ == "__main__":
    main()
