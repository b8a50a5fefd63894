"""PyTorch's quickstart (pytorch.org/tutorials/beginner/basics/quickstart_tutorial.html), torch -> nurinet.

Run:  python examples/tutorials/pytorch_quickstart.py [--epochs N] [--mnist DIR] [--torch]

``--torch`` runs the same script with PyTorch (``import torch as nurinet``) for comparison.

Edits beyond torch -> nurinet: none in the tutorial's code.
Harness edits (not needed by nurinet, needed to run offline and to be tested): FashionMNIST from
torchvision (a download) is replaced by the bundled digits upsampled to 28x28 (or MNIST's test set
with --mnist DIR; see _data.py), so ``classes`` are the digits' names; the top-level code is
wrapped in ``main(argv)`` with ``--epochs`` (default 5, as the tutorial), ``--seed`` and
``--model-path``; ``main`` returns the accuracies, losses and the reloaded model's prediction.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

if "--torch" in sys.argv:
    import torch as nurinet
    from torch import nn
    from torch.utils.data import DataLoader
else:
    import nurinet
    from nurinet import nn
    from nurinet.utils.data import DataLoader

from _data import datasets


# Define model
class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28*28, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, 10)
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


def train(dataloader, model, loss_fn, optimizer, device, max_batches=None):
    size = len(dataloader.dataset)
    model.train()
    losses = []
    for batch, (X, y) in enumerate(dataloader):
        if max_batches is not None and batch >= max_batches:
            break
        X, y = X.to(device), y.to(device)

        # Compute prediction error
        pred = model(X)
        loss = loss_fn(pred, y)

        # Backpropagation
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

        losses.append(loss.item())
        if batch % 100 == 0:
            loss, current = loss.item(), (batch + 1) * len(X)
            print(f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]")
    return losses


def test(dataloader, model, loss_fn, device):
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    model.eval()
    test_loss, correct = 0, 0
    with nurinet.no_grad():
        for X, y in dataloader:
            X, y = X.to(device), y.to(device)
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(nurinet.float).sum().item()
    test_loss /= num_batches
    correct /= size
    print(f"Test Error: \n Accuracy: {(100*correct):>0.1f}%, Avg loss: {test_loss:>8f} \n")
    return correct, test_loss


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--max-batches", type=int, default=None, help="batches per epoch (tests)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mnist", metavar="DIR", default=None)
    parser.add_argument("--model-path", default="model.pth")
    parser.add_argument("--torch", action="store_true")
    args = parser.parse_args(argv)
    nurinet.manual_seed(args.seed)

    # Download training data from open datasets.  (here: see _data.py)
    training_data, test_data = datasets(nurinet, args.mnist, args.seed)

    batch_size = 64

    # Create data loaders.
    train_dataloader = DataLoader(training_data, batch_size=batch_size)
    test_dataloader = DataLoader(test_data, batch_size=batch_size)

    for X, y in test_dataloader:
        print(f"Shape of X [N, C, H, W]: {X.shape}")
        print(f"Shape of y: {y.shape} {y.dtype}")
        break

    device = nurinet.accelerator.current_accelerator().type if nurinet.accelerator.is_available() else "cpu"
    print(f"Using {device} device")

    model = NeuralNetwork().to(device)
    print(model)

    loss_fn = nn.CrossEntropyLoss()
    optimizer = nurinet.optim.SGD(model.parameters(), lr=1e-3)

    epochs = args.epochs
    losses, accuracies = [], []
    for t in range(epochs):
        print(f"Epoch {t+1}\n-------------------------------")
        losses += train(train_dataloader, model, loss_fn, optimizer, device, args.max_batches)
        accuracies.append(test(test_dataloader, model, loss_fn, device)[0])
    print("Done!")

    nurinet.save(model.state_dict(), args.model_path)
    print(f"Saved PyTorch Model State to {args.model_path}")

    model = NeuralNetwork().to(device)
    model.load_state_dict(nurinet.load(args.model_path, weights_only=True))

    classes = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ]

    model.eval()
    x, y = test_data[0][0], test_data[0][1]
    with nurinet.no_grad():
        x = x.to(device)
        pred = model(x)
        predicted, actual = classes[pred[0].argmax(0)], classes[y]
        print(f'Predicted: "{predicted}", Actual: "{actual}"')
    reloaded_accuracy = test(test_dataloader, model, loss_fn, device)[0]
    return {"accuracies": accuracies, "losses": losses, "reloaded_accuracy": reloaded_accuracy,
            "predicted": predicted, "actual": actual}


if __name__ == "__main__":
    main()
