"""PyTorch's "NLP From Scratch: Classifying Names with a Character-Level RNN"
(pytorch.org/tutorials/intermediate/char_rnn_classification_tutorial.html), torch -> nurinet.

Run:  python examples/tutorials/pytorch_char_rnn.py [--n-iters N] [--nn-rnn] [--torch]

``--torch`` runs the same script with PyTorch (``import torch as nurinet``) for comparison.
The model is the tutorial's hand-written RNN (i2h, h2h, h2o Linear layers, ``F.tanh``,
``nn.LogSoftmax``), fed one ``(1, n_letters)`` step at a time from a ``(T, 1, n_letters)`` one-hot
tensor, trained by the tutorial's manual SGD on ``nn.NLLLoss``. ``--nn-rnn`` uses the newer
tutorial's ``CharRNN`` (``nn.RNN`` over the whole ``(T, 1, n_letters)`` tensor) instead.

Edits beyond torch -> nurinet: none for the hand-written RNN (``p.data.add_(p.grad.data,
alpha=-learning_rate)`` runs as in PyTorch: ``Parameter.data`` is a tensor sharing the parameter's
array). ``--nn-rnn`` only: ``nn.RNN(input_size, hidden_size)`` became
``nn.RNN(input_size, hidden_size, batch_first=False)``: nurinet's recurrent layers default to
``batch_first=True``; without it the tutorial's ``(T, 1, F)`` input is refused with a message
naming this fix.
Harness edits (to run offline and to be tested): the 18-language ``data/names`` download is
replaced by ``examples/data/names`` (about 100 surnames in each of English, German, Italian,
Japanese); each language's names are split 80/20 with a fixed seed, training samples only the 80%
(the tutorial samples all names and evaluates on them) and the held-out accuracy is reported; the
top-level code is wrapped in ``main(argv)`` with ``--n-iters`` (default 100,000 as the tutorial),
``--seed``, ``--model-path``; the matplotlib loss plot and confusion matrix are left out; the
trained model is saved with ``nurinet.save(rnn.state_dict(), path)`` and reloaded (not in the
tutorial) to check that it round-trips.
"""
# ruff: noqa: UP029, UP031, UP008, UP020, SIM115, RUF059, I001

from io import open
import argparse
import glob
import math
import os
import random
import string
import sys
import time
import unicodedata

if "--torch" in sys.argv:
    import torch as nurinet
    import torch.nn.functional as F
    from torch import nn
else:
    import nurinet
    import nurinet.nn.functional as F
    from nurinet import nn

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "data", "names")

all_letters = string.ascii_letters + " .,;'"
n_letters = len(all_letters)


def findFiles(path): return sorted(glob.glob(path))  # sorted: glob's order is the file system's


# Turn a Unicode string to plain ASCII, thanks to https://stackoverflow.com/a/518232/2809427
def unicodeToAscii(s):
    return ''.join(
        c for c in unicodedata.normalize('NFD', s)
        if unicodedata.category(c) != 'Mn'
        and c in all_letters
    )


# Read a file and split into lines
def readLines(filename):
    lines = open(filename, encoding='utf-8').read().strip().split('\n')
    return [unicodeToAscii(line) for line in lines]


# Find letter index from all_letters, e.g. "a" = 0
def letterToIndex(letter):
    return all_letters.find(letter)


# Just for demonstration, turn a letter into a <1 x n_letters> Tensor
def letterToTensor(letter):
    tensor = nurinet.zeros(1, n_letters)
    tensor[0][letterToIndex(letter)] = 1
    return tensor


# Turn a line into a <line_length x 1 x n_letters>,
# or an array of one-hot letter vectors
def lineToTensor(line):
    tensor = nurinet.zeros(len(line), 1, n_letters)
    for li, letter in enumerate(line):
        tensor[li][0][letterToIndex(letter)] = 1
    return tensor


class RNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(RNN, self).__init__()

        self.hidden_size = hidden_size

        self.i2h = nn.Linear(input_size, hidden_size)
        self.h2h = nn.Linear(hidden_size, hidden_size)
        self.h2o = nn.Linear(hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, input, hidden):
        hidden = F.tanh(self.i2h(input) + self.h2h(hidden))
        output = self.h2o(hidden)
        output = self.softmax(output)
        return output, hidden

    def initHidden(self):
        return nurinet.zeros(1, self.hidden_size)


class CharRNN(nn.Module):
    """The newer tutorial's model: ``nn.RNN`` over the whole (T, 1, n_letters) tensor."""

    def __init__(self, input_size, hidden_size, output_size):
        super(CharRNN, self).__init__()

        self.rnn = nn.RNN(input_size, hidden_size, batch_first=False)  # the one edit (--nn-rnn only)
        self.h2o = nn.Linear(hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, line_tensor):
        rnn_out, hidden = self.rnn(line_tensor)
        output = self.h2o(hidden[0])
        output = self.softmax(output)

        return output


def timeSince(since):
    now = time.time()
    s = now - since
    m = math.floor(s / 60)
    s -= m * 60
    return '%dm %ds' % (m, s)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-iters", type=int, default=100000)
    parser.add_argument("--print-every", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nn-rnn", action="store_true", help="the nn.RNN model (CharRNN)")
    parser.add_argument("--model-path", default="char_rnn.pth")
    parser.add_argument("--torch", action="store_true")
    args = parser.parse_args(argv)
    random.seed(args.seed)
    nurinet.manual_seed(args.seed)

    # Build the category_lines dictionary, a list of names per language
    category_lines = {}
    all_categories = []
    test_lines = {}  # harness: 20% of each language's names held out
    for filename in findFiles(os.path.join(DATA, '*.txt')):
        category = os.path.splitext(os.path.basename(filename))[0]
        all_categories.append(category)
        lines = readLines(filename)
        random.Random(args.seed).shuffle(lines)
        n_test = len(lines) // 5
        category_lines[category] = lines[n_test:]
        test_lines[category] = lines[:n_test]

    n_categories = len(all_categories)
    print(all_categories, n_letters)
    print(letterToTensor('J'))
    print(lineToTensor('Jones').size())

    n_hidden = 128
    if args.nn_rnn:
        rnn = CharRNN(n_letters, n_hidden, n_categories)
    else:
        rnn = RNN(n_letters, n_hidden, n_categories)

    def step(line_tensor):
        if args.nn_rnn:
            return rnn(line_tensor)
        hidden = rnn.initHidden()
        for i in range(line_tensor.size()[0]):
            output, hidden = rnn(line_tensor[i], hidden)
        return output

    def categoryFromOutput(output):
        top_n, top_i = output.topk(1)
        category_i = top_i[0].item()
        return all_categories[category_i], category_i

    def randomChoice(lst):
        return lst[random.randint(0, len(lst) - 1)]

    def randomTrainingExample():
        category = randomChoice(all_categories)
        line = randomChoice(category_lines[category])
        category_tensor = nurinet.tensor([all_categories.index(category)], dtype=nurinet.long)
        line_tensor = lineToTensor(line)
        return category, line, category_tensor, line_tensor

    criterion = nn.NLLLoss()
    learning_rate = 0.005  # If you set this too high, it might explode. If too low, it might not learn

    def train(category_tensor, line_tensor):
        rnn.zero_grad()
        output = step(line_tensor)

        loss = criterion(output, category_tensor)
        loss.backward()

        # Add parameters' gradients to their values, multiplied by learning rate
        for p in rnn.parameters():
            p.data.add_(p.grad.data, alpha=-learning_rate)

        return output, loss.item()

    n_iters = args.n_iters
    print_every = args.print_every
    plot_every = max(1, min(1000, n_iters // 10))

    # Keep track of losses for plotting
    current_loss = 0
    all_losses = []

    start = time.time()

    for iter in range(1, n_iters + 1):
        category, line, category_tensor, line_tensor = randomTrainingExample()
        output, loss = train(category_tensor, line_tensor)
        current_loss += loss

        # Print ``iter`` number, loss, name and guess
        if iter % print_every == 0:
            guess, guess_i = categoryFromOutput(output)
            correct = '✓' if guess == category else '✗ (%s)' % category
            print('%d %d%% (%s) %.4f %s / %s %s' % (iter, iter / n_iters * 100, timeSince(start), loss,
                                                    line, guess, correct))

        # Add current loss avg to list of losses
        if iter % plot_every == 0:
            all_losses.append(current_loss / plot_every)
            current_loss = 0

    # Just return an output given a line
    def evaluate(line_tensor):
        return step(line_tensor)

    def predict(input_line, n_predictions=3):
        print('\n> %s' % input_line)
        with nurinet.no_grad():
            output = evaluate(lineToTensor(input_line))

            # Get top N categories
            topv, topi = output.topk(n_predictions, 1, True)
            predictions = []

            for i in range(n_predictions):
                value = topv[0][i].item()
                category_index = topi[0][i].item()
                print('(%.2f) %s' % (value, all_categories[category_index]))
                predictions.append([value, all_categories[category_index]])
        return predictions

    predict('Dovesky')
    predict('Jackson')
    predict('Satoshi')

    # Harness: accuracy on the held-out names, then save, reload and check the same predictions.
    def held_out_accuracy(model_step):
        correct = total = 0
        with nurinet.no_grad():
            for category in all_categories:
                for line in test_lines[category]:
                    output = model_step(lineToTensor(line))
                    correct += categoryFromOutput(output)[0] == category
                    total += 1
        return correct / total

    accuracy = held_out_accuracy(step)
    print(f"Held-out accuracy: {100 * accuracy:.1f}% ({sum(map(len, test_lines.values()))} names)")
    nurinet.save(rnn.state_dict(), args.model_path)
    rnn = (CharRNN if args.nn_rnn else RNN)(n_letters, n_hidden, n_categories)
    rnn.load_state_dict(nurinet.load(args.model_path))
    reloaded_accuracy = held_out_accuracy(step)
    print(f"Reloaded model's held-out accuracy: {100 * reloaded_accuracy:.1f}%")
    return {"accuracy": accuracy, "reloaded_accuracy": reloaded_accuracy, "losses": all_losses}


if __name__ == "__main__":
    main()
