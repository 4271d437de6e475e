#!/usr/bin/env python3
"""PyTorch's side of `make bench` (bench/run.py drives it): the issue-10 workloads in eager
PyTorch, the way a PyTorch user writes them, with the same initialization schemes as Flax's
defaults and the same optimizer (SGD, lr 0.1, momentum 0.9 == optax.sgd(0.1, 0.9)).

  torch_bench.py <workload> [--iters N] [--warmup W] [--threads T]

prints one JSON line: {"system": "pytorch", "workload", "times_ms", "peak_rss_mb"}.
Layouts are PyTorch's own (NCHW); loom's are Flax's (NHWC).
"""
import argparse
import json
import math
import resource
import sys
import threading
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def lecun_normal_(w, fan_in):
    # Flax's default kernel init: variance_scaling(1, fan_in, truncated_normal), i.e. a normal
    # truncated to 2 std whose std is sqrt(1/fan_in) / 0.87962566103423978.
    std = math.sqrt(1.0 / fan_in) / 0.87962566103423978
    nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std)


def flax_init(module):
    for m in module.modules():
        if isinstance(m, nn.Linear):
            lecun_normal_(m.weight, m.in_features)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):
            lecun_normal_(m.weight, m.in_channels * m.kernel_size[0] * m.kernel_size[1])
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


class CNN(nn.Module):  # Flax's MNIST CNN (SAME padding), NCHW
    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv1 = nn.Conv2d(32, 64, 3, padding=1)
        self.dense0 = nn.Linear(7 * 7 * 64, 256)
        self.dense1 = nn.Linear(256, 10)

    def forward(self, x):
        x = F.avg_pool2d(F.relu(self.conv0(x)), 2)
        x = F.avg_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.dense0(x.flatten(1)))
        return self.dense1(x)


def mlp(sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):  # Flax's ResNetBlock (v1.5: stride on the 3x3 conv)
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv0 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn0 = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
        self.conv1 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
        nn.init.zeros_(self.bn1.weight)
        self.proj = None
        if stride != 1 or cin != cout:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout, eps=1e-5))

    def forward(self, x):
        y = F.relu(self.bn0(self.conv0(x)))
        y = self.bn1(self.conv1(y))
        r = x if self.proj is None else self.proj(x)
        return F.relu(r + y)


class ResNet18(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.stem = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn = nn.BatchNorm2d(64, eps=1e-5)
        blocks, cin = [], 64
        for i, n in enumerate([2, 2, 2, 2]):
            for j in range(n):
                cout = 64 << i
                blocks.append(BasicBlock(cin, cout, 2 if (i > 0 and j == 0) else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        # Flax's max_pool((3, 3), (2, 2), "SAME") on an even size pads 0 before, 1 after
        x = F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=-math.inf), 3, 2)
        x = self.blocks(x)
        return self.fc(x.mean((2, 3)))


class EncoderBlock(nn.Module):  # wmt's Encoder1DBlock: pre-LN, attention without biases
    def __init__(self, d=256, heads=4, mlp_dim=1024, rate=0.1):
        super().__init__()
        self.heads, self.rate = heads, rate
        self.ln0 = nn.LayerNorm(d, eps=1e-6)
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, d, bias=False)
        self.o = nn.Linear(d, d, bias=False)
        self.ln1 = nn.LayerNorm(d, eps=1e-6)
        self.fc0 = nn.Linear(d, mlp_dim)
        self.fc1 = nn.Linear(mlp_dim, d)
        for m in (self.q, self.k, self.v, self.o, self.fc0, self.fc1):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.normal_(m.bias, std=1e-6)

    def forward(self, x):
        b, n, d = x.shape
        h = self.heads
        y = self.ln0(x)
        q = self.q(y).view(b, n, h, d // h).transpose(1, 2)
        k = self.k(y).view(b, n, h, d // h).transpose(1, 2)
        v = self.v(y).view(b, n, h, d // h).transpose(1, 2)
        w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // h), dim=-1)
        w = F.dropout(w, self.rate, self.training)
        a = (w @ v).transpose(1, 2).reshape(b, n, d)
        x = x + F.dropout(self.o(a), self.rate, self.training)
        y = self.ln1(x)
        y = F.dropout(F.relu(self.fc0(y)), self.rate, self.training)
        y = F.dropout(self.fc1(y), self.rate, self.training)
        return x + y


def classifier_train(model, x, labels):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
        loss.item()
    return step


def cnn_train():
    torch.manual_seed(0)
    return classifier_train(flax_init(CNN()), torch.randn(128, 1, 28, 28),
                            torch.randint(0, 10, (128,)))


def mlp_train():
    torch.manual_seed(0)
    return classifier_train(flax_init(mlp([784, 512, 512, 10])), torch.randn(128, 784),
                            torch.randint(0, 10, (128,)))


def mlp_b1():
    torch.manual_seed(0)
    model = flax_init(mlp([784, 128, 10])).eval()
    return model, torch.randn(1, 784)


def mlp_infer_b1():
    model, x = mlp_b1()

    def step():
        with torch.no_grad():
            model(x)
    return step


def concurrent_infer():  # 2 threads x 100 calls on the same module
    model, x = mlp_b1()

    def worker():
        with torch.no_grad():
            for _ in range(100):
                model(x)

    def step():
        ts = [threading.Thread(target=worker) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    return step


def resnet_infer():
    torch.manual_seed(0)
    model = flax_init(ResNet18()).eval()
    x = torch.randn(8, 3, 64, 64)

    def step():
        with torch.no_grad():
            model(x)
    return step


def transformer_train():
    torch.manual_seed(0)
    model = nn.Sequential(EncoderBlock(), EncoderBlock()).train()
    x = torch.randn(16, 128, 256)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(x).square().mean()
        loss.backward()
        opt.step()
        loss.item()
    return step


WORKLOADS = {f.__name__: f for f in [cnn_train, mlp_train, mlp_infer_b1, concurrent_infer,
                                     resnet_infer, transformer_train]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("workload", choices=sorted(WORKLOADS))
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    step = WORKLOADS[a.workload]()
    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"system": "pytorch", "workload": a.workload, "times_ms": times,
                      "peak_rss_mb": round(rss, 1)}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
