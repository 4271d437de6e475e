// libtorch's side of `make bench` (bench/run.py drives it): the issue-10 workloads in PyTorch's
// C++ frontend, the way a libtorch user writes them, the same models, initialization schemes and
// optimizer as bench/peers/torch_bench.py (see there for the choices).
//
//   libtorch_bench <workload> [--iters N] [--warmup W] [--threads T]
//
// prints one JSON line: {"system": "libtorch", "workload", "times_ms", "peak_rss_mb"}.
#include <sys/resource.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace F = torch::nn::functional;
using Step = std::function<void()>;

void lecun_normal_(torch::Tensor w, int64_t fan_in) {
  // Flax's default kernel init: a normal truncated to 2 std, std sqrt(1/fan_in)/0.8796...
  torch::NoGradGuard g;
  const double std = std::sqrt(1.0 / double(fan_in)) / 0.87962566103423978;
  w.normal_(0, std).clamp_(-2 * std, 2 * std);  // clamp: close enough for a timing peer
}

void flax_init(torch::nn::Module& m) {
  for (auto& sub : m.modules(/*include_self=*/true)) {
    if (auto* l = sub->as<torch::nn::Linear>()) {
      lecun_normal_(l->weight, l->options.in_features());
      if (l->bias.defined()) torch::nn::init::zeros_(l->bias);
    } else if (auto* c = sub->as<torch::nn::Conv2d>()) {
      const auto& k = c->options.kernel_size();
      lecun_normal_(c->weight, c->options.in_channels() * k->at(0) * k->at(1));
      if (c->bias.defined()) torch::nn::init::zeros_(c->bias);
    }
  }
}

struct CNNImpl : torch::nn::Module {
  torch::nn::Conv2d conv0{torch::nn::Conv2dOptions(1, 32, 3).padding(1)};
  torch::nn::Conv2d conv1{torch::nn::Conv2dOptions(32, 64, 3).padding(1)};
  torch::nn::Linear dense0{7 * 7 * 64, 256}, dense1{256, 10};
  CNNImpl() {
    register_module("conv0", conv0);
    register_module("conv1", conv1);
    register_module("dense0", dense0);
    register_module("dense1", dense1);
  }
  torch::Tensor forward(torch::Tensor x) {
    x = F::avg_pool2d(torch::relu(conv0(x)), F::AvgPool2dFuncOptions(2));
    x = F::avg_pool2d(torch::relu(conv1(x)), F::AvgPool2dFuncOptions(2));
    x = torch::relu(dense0(x.flatten(1)));
    return dense1(x);
  }
};
TORCH_MODULE(CNN);

torch::nn::Sequential mlp(const std::vector<int64_t>& sizes) {
  torch::nn::Sequential s;
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
    s->push_back(torch::nn::Linear(sizes[i], sizes[i + 1]));
    if (i + 2 < sizes.size()) s->push_back(torch::nn::ReLU());
  }
  return s;
}

struct BlockImpl : torch::nn::Module {
  torch::nn::Conv2d conv0{nullptr}, conv1{nullptr}, proj{nullptr};
  torch::nn::BatchNorm2d bn0{nullptr}, bn1{nullptr}, proj_bn{nullptr};
  BlockImpl(int64_t cin, int64_t cout, int64_t stride) {
    conv0 = register_module(
        "conv0", torch::nn::Conv2d(
                     torch::nn::Conv2dOptions(cin, cout, 3).stride(stride).padding(1).bias(false)));
    bn0 = register_module("bn0", torch::nn::BatchNorm2d(cout));
    conv1 = register_module(
        "conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(cout, cout, 3).padding(1).bias(false)));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(cout));
    torch::nn::init::zeros_(bn1->weight);
    if (stride != 1 || cin != cout) {
      proj = register_module(
          "proj",
          torch::nn::Conv2d(torch::nn::Conv2dOptions(cin, cout, 1).stride(stride).bias(false)));
      proj_bn = register_module("proj_bn", torch::nn::BatchNorm2d(cout));
    }
  }
  torch::Tensor forward(torch::Tensor x) {
    auto y = torch::relu(bn0(conv0(x)));
    y = bn1(conv1(y));
    auto r = proj ? proj_bn(proj(x)) : x;
    return torch::relu(r + y);
  }
};
TORCH_MODULE(Block);

struct ResNet18Impl : torch::nn::Module {
  torch::nn::Conv2d stem{torch::nn::Conv2dOptions(3, 64, 7).stride(2).padding(3).bias(false)};
  torch::nn::BatchNorm2d bn{64};
  torch::nn::Sequential blocks;
  torch::nn::Linear fc{512, 1000};
  ResNet18Impl() {
    register_module("stem", stem);
    register_module("bn", bn);
    int64_t cin = 64;
    for (int i = 0; i < 4; ++i) {
      for (int j = 0; j < 2; ++j) {
        const int64_t cout = int64_t{64} << i;
        blocks->push_back(Block(cin, cout, (i > 0 && j == 0) ? 2 : 1));
        cin = cout;
      }
    }
    register_module("blocks", blocks);
    register_module("fc", fc);
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(bn(stem(x)));
    x = F::pad(x, F::PadFuncOptions({0, 1, 0, 1}).value(-INFINITY));  // Flax's SAME max pool
    x = F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2));
    x = blocks->forward(x);
    return fc(x.mean({2, 3}));
  }
};
TORCH_MODULE(ResNet18);

struct EncoderBlockImpl : torch::nn::Module {
  int64_t heads = 4;
  double rate = 0.1;
  torch::nn::LayerNorm ln0{torch::nn::LayerNormOptions({256}).eps(1e-6)};
  torch::nn::LayerNorm ln1{torch::nn::LayerNormOptions({256}).eps(1e-6)};
  torch::nn::Linear q{torch::nn::LinearOptions(256, 256).bias(false)};
  torch::nn::Linear k{torch::nn::LinearOptions(256, 256).bias(false)};
  torch::nn::Linear v{torch::nn::LinearOptions(256, 256).bias(false)};
  torch::nn::Linear o{torch::nn::LinearOptions(256, 256).bias(false)};
  torch::nn::Linear fc0{256, 1024}, fc1{1024, 256};
  EncoderBlockImpl() {
    register_module("ln0", ln0);
    register_module("ln1", ln1);
    register_module("q", q);
    register_module("k", k);
    register_module("v", v);
    register_module("o", o);
    register_module("fc0", fc0);
    register_module("fc1", fc1);
    for (auto* l : {&q, &k, &v, &o, &fc0, &fc1}) {
      torch::nn::init::xavier_uniform_((*l)->weight);
      if ((*l)->bias.defined()) torch::nn::init::normal_((*l)->bias, 0, 1e-6);
    }
  }
  torch::Tensor forward(torch::Tensor x) {
    const int64_t b = x.size(0), n = x.size(1), d = x.size(2), hd = d / heads;
    auto y = ln0(x);
    auto split = [&](torch::Tensor t) { return t.view({b, n, heads, hd}).transpose(1, 2); };
    auto qq = split(q(y)), kk = split(k(y)), vv = split(v(y));
    auto w = torch::softmax(torch::matmul(qq, kk.transpose(-2, -1)) / std::sqrt(double(hd)), -1);
    w = torch::dropout(w, rate, is_training());
    auto a = torch::matmul(w, vv).transpose(1, 2).reshape({b, n, d});
    x = x + torch::dropout(o(a), rate, is_training());
    y = ln1(x);
    y = torch::dropout(torch::relu(fc0(y)), rate, is_training());
    y = torch::dropout(fc1(y), rate, is_training());
    return x + y;
  }
};
TORCH_MODULE(EncoderBlock);

template <typename Model>
Step classifier_train(Model model, torch::Tensor x, torch::Tensor labels) {
  auto opt = std::make_shared<torch::optim::SGD>(model->parameters(),
                                                 torch::optim::SGDOptions(0.1).momentum(0.9));
  return [=]() mutable {
    opt->zero_grad();
    auto loss = F::cross_entropy(model->forward(x), labels);
    loss.backward();
    opt->step();
    (void)loss.item().toFloat();
  };
}

Step cnn_train() {
  torch::manual_seed(0);
  CNN model;
  flax_init(*model);
  return classifier_train(model, torch::randn({128, 1, 28, 28}), torch::randint(0, 10, {128}));
}

Step mlp_train() {
  torch::manual_seed(0);
  auto model = mlp({784, 512, 512, 10});
  flax_init(*model);
  return classifier_train(model, torch::randn({128, 784}), torch::randint(0, 10, {128}));
}

Step mlp_infer_b1() {
  torch::manual_seed(0);
  auto model = mlp({784, 128, 10});
  flax_init(*model);
  model->eval();
  auto x = torch::randn({1, 784});
  return [=]() mutable {
    torch::NoGradGuard g;
    (void)model->forward(x);
  };
}

Step concurrent_infer() {
  torch::manual_seed(0);
  auto model = mlp({784, 128, 10});
  flax_init(*model);
  model->eval();
  auto x = torch::randn({1, 784});
  return [=]() mutable {
    auto worker = [&] {
      torch::NoGradGuard g;
      for (int i = 0; i < 100; ++i) (void)model->forward(x);
    };
    std::thread a(worker), b(worker);
    a.join();
    b.join();
  };
}

Step resnet_infer() {
  torch::manual_seed(0);
  ResNet18 model;
  flax_init(*model);
  model->eval();
  auto x = torch::randn({8, 3, 64, 64});
  return [=]() mutable {
    torch::NoGradGuard g;
    (void)model->forward(x);
  };
}

Step transformer_train() {
  torch::manual_seed(0);
  torch::nn::Sequential model{EncoderBlock{}, EncoderBlock{}};
  model->train();
  auto x = torch::randn({16, 128, 256});
  auto opt = std::make_shared<torch::optim::SGD>(model->parameters(),
                                                 torch::optim::SGDOptions(0.1).momentum(0.9));
  return [=]() mutable {
    opt->zero_grad();
    auto loss = model->forward(x).square().mean();
    loss.backward();
    opt->step();
    (void)loss.item().toFloat();
  };
}

}  // namespace

int main(int argc, char** argv) {
  const std::map<std::string, std::function<Step()>> workloads = {
      {"cnn_train", cnn_train},       {"mlp_train", mlp_train},
      {"mlp_infer_b1", mlp_infer_b1}, {"concurrent_infer", concurrent_infer},
      {"resnet_infer", resnet_infer}, {"transformer_train", transformer_train},
  };
  if (argc < 2 || !workloads.count(argv[1])) {
    std::fprintf(stderr,
                 "usage: libtorch_bench <workload> [--iters N] [--warmup W] [--threads T]\n");
    return 2;
  }
  int iters = 10, warmup = 2, threads = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (flag == "--iters")
      iters = value;
    else if (flag == "--warmup")
      warmup = value;
    else if (flag == "--threads")
      threads = value;
  }
  if (threads > 0) torch::set_num_threads(threads);
  Step step = workloads.at(argv[1])();
  for (int i = 0; i < warmup; ++i) step();
  std::vector<double> times;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    times.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("{\"system\": \"libtorch\", \"workload\": \"%s\", \"times_ms\": [", argv[1]);
  for (std::size_t i = 0; i < times.size(); ++i) std::printf("%s%.6f", i ? ", " : "", times[i]);
  std::printf("], \"peak_rss_mb\": %.1f}\n", double(usage.ru_maxrss) / 1024.0);
  return 0;
}
