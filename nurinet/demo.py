"""The main job: ``python -m nurinet.demo``.

Trains a 2-8-1 network on XOR with nurinet's autograd and plain gradient
descent, then prints its predictions. (Replaced by the digits MLP once the
training layer lands.)
"""

from __future__ import annotations

import numpy as np

import nurinet as nt
import nurinet.functional as F


def train_xor(steps: int = 2000, lr: float = 0.5, seed: int = 0) -> tuple[list[float], nt.Tensor]:
    """Fit XOR with a tanh hidden layer and a sigmoid output; return losses and predictions."""
    gen = nt.Generator(seed)
    x = nt.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = nt.tensor([[0.0], [1.0], [1.0], [0.0]])
    w1 = nt.randn(8, 2, generator=gen) * 1.0
    w1.requires_grad = True
    b1 = nt.zeros(8, requires_grad=True)
    w2 = nt.randn(1, 8, generator=gen) * 0.5
    w2.requires_grad = True
    b2 = nt.zeros(1, requires_grad=True)
    params = [w1, b1, w2, b2]
    losses = []
    for _ in range(steps):
        hidden = F.tanh(F.linear(x, w1, b1))
        prob = 1.0 / (1.0 + F.exp(-F.linear(hidden, w2, b2)))
        loss = F.mean((prob - y) ** 2)
        for p in params:
            p.grad = None
        loss.backward()
        with nt.no_grad():
            for p in params:
                p.data -= lr * p.grad.data
        losses.append(loss.item())
    return losses, prob.detach()


def main() -> None:
    losses, prob = train_xor()
    print("nurinet demo: XOR with a 2-8-1 network, trained by back-propagation")
    print(f"loss: first {losses[0]:.4f}, last {losses[-1]:.6f}")
    for inputs, p in zip([(0, 0), (0, 1), (1, 0), (1, 1)], prob.numpy().ravel()):
        print(f"  xor{inputs} -> {p:.3f} (predicted {int(p > 0.5)}, expected {inputs[0] ^ inputs[1]})")
    correct = (prob.numpy().ravel() > 0.5).astype(int) == np.array([0, 1, 1, 0])
    print(f"accuracy: {correct.mean():.0%}")


if __name__ == "__main__":
    main()
