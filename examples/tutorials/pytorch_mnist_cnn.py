"""pytorch/examples' MNIST CNN (github.com/pytorch/examples, mnist/main.py), torch -> nurinet.

Run:  python examples/tutorials/pytorch_mnist_cnn.py [--epochs N] [--mnist DIR] [--torch]

``--torch`` runs the same script with PyTorch (``import torch as nurinet``) for comparison;
``compare_mnist_cnn.py`` runs it both ways and records both test curves (docs/porting.md).

Edits beyond torch -> nurinet: none in the example's code.
Harness edits (to run offline and to be tested): ``datasets.MNIST(..., transform=Compose([ToTensor(),
Normalize((0.1307,), (0.3081,))]))`` from torchvision (a download) is replaced by the bundled digits
upsampled to 28x28 (or MNIST's test set split 8,000/2,000 with --mnist DIR; see _data.py) with the
same Normalize; ``main`` takes ``argv`` and returns the test accuracies, the training losses and the
saved-and-reloaded model's accuracy; ``--max-batches`` (tests), ``--mnist``, ``--torch`` and
``--model-path`` are added, ``train``/``test`` return what they print.
"""
# ruff: noqa: UP008

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

if "--torch" in sys.argv:
    import torch as nurinet
    import torch.nn.functional as F
    from torch import nn, optim
    from torch.optim.lr_scheduler import StepLR
else:
    import nurinet
    import nurinet.nn.functional as F
    from nurinet import nn, optim
    from nurinet.optim.lr_scheduler import StepLR

from _data import datasets


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = nurinet.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def train(args, model, device, train_loader, optimizer, epoch):
    model.train()
    losses = []
    for batch_idx, (data, target) in enumerate(train_loader):
        if args.max_batches is not None and batch_idx >= args.max_batches:
            break
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if batch_idx % args.log_interval == 0:
            print(f'Train Epoch: {epoch} [{batch_idx * len(data)}/{len(train_loader.dataset)} ({100. * batch_idx / len(train_loader):.0f}%)]\tLoss: {loss.item():.6f}')
            if args.dry_run:
                break
    return losses


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with nurinet.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction='sum').item()  # sum up batch loss
            pred = output.argmax(dim=1, keepdim=True)  # get the index of the max log-probability
            correct += pred.eq(target.view_as(pred)).sum().item()

    test_loss /= len(test_loader.dataset)

    print(f'\nTest set: Average loss: {test_loss:.4f}, Accuracy: {correct}/{len(test_loader.dataset)} ({100. * correct / len(test_loader.dataset):.0f}%)\n')
    return correct / len(test_loader.dataset)


def main(argv=None):
    # Training settings
    parser = argparse.ArgumentParser(description='PyTorch MNIST Example')
    parser.add_argument('--batch-size', type=int, default=64, metavar='N',
                        help='input batch size for training (default: 64)')
    parser.add_argument('--test-batch-size', type=int, default=1000, metavar='N',
                        help='input batch size for testing (default: 1000)')
    parser.add_argument('--epochs', type=int, default=14, metavar='N',
                        help='number of epochs to train (default: 14)')
    parser.add_argument('--lr', type=float, default=1.0, metavar='LR',
                        help='learning rate (default: 1.0)')
    parser.add_argument('--gamma', type=float, default=0.7, metavar='M',
                        help='Learning rate step gamma (default: 0.7)')
    parser.add_argument('--no-accel', action='store_true',
                        help='disables accelerator')
    parser.add_argument('--dry-run', action='store_true',
                        help='quickly check a single pass')
    parser.add_argument('--seed', type=int, default=1, metavar='S',
                        help='random seed (default: 1)')
    parser.add_argument('--log-interval', type=int, default=10, metavar='N',
                        help='how many batches to wait before logging training status')
    parser.add_argument('--save-model', action='store_true',
                        help='For Saving the current Model')
    # Harness options (not in the original)
    parser.add_argument('--max-batches', type=int, default=None, help='batches per epoch (tests)')
    parser.add_argument('--mnist', metavar='DIR', default=None,
                        help='MNIST t10k files, split 8,000/2,000 (default: the bundled digits)')
    parser.add_argument('--model-path', default='mnist_cnn.pt')
    parser.add_argument('--torch', action='store_true', help='run with PyTorch')
    args = parser.parse_args(argv)

    use_accel = not args.no_accel and nurinet.accelerator.is_available()

    nurinet.manual_seed(args.seed)

    if use_accel:
        device = nurinet.accelerator.current_accelerator()
    else:
        device = nurinet.device("cpu")

    train_kwargs = {'batch_size': args.batch_size}
    test_kwargs = {'batch_size': args.test_batch_size}
    if use_accel:
        accel_kwargs = {'num_workers': 1,
                        'persistent_workers': True,
                        'pin_memory': True,
                        'shuffle': True}
        train_kwargs.update(accel_kwargs)
        test_kwargs.update(accel_kwargs)

    dataset1, dataset2 = datasets(nurinet, args.mnist, seed=0, mean=0.1307, std=0.3081)
    train_loader = nurinet.utils.data.DataLoader(dataset1, **train_kwargs)
    test_loader = nurinet.utils.data.DataLoader(dataset2, **test_kwargs)

    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)

    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    losses, accuracies = [], []
    for epoch in range(1, args.epochs + 1):
        losses += train(args, model, device, train_loader, optimizer, epoch)
        accuracies.append(test(model, device, test_loader))
        scheduler.step()

    if args.save_model:
        nurinet.save(model.state_dict(), args.model_path)
        # Not in the original: reload into a new Net and test it again.
        model = Net().to(device)
        model.load_state_dict(nurinet.load(args.model_path))
        return {"accuracies": accuracies, "losses": losses,
                "reloaded_accuracy": test(model, device, test_loader)}
    return {"accuracies": accuracies, "losses": losses}


if __name__ == '__main__':
    main()
