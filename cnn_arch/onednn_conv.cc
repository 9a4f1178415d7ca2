// oneDNN's direct convolutions as an XLA:CPU FFI handler: the forward pass, the input gradient and
// the kernel gradient of a float32 convolution with NHWC images and HWIO kernels (grouped too).
// Built by `python -m cnn_arch.onednn --build` (setup.sh); used through cnn_arch/onednn.py.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dims = dnnl::memory::dims;
using tag = dnnl::memory::format_tag;

namespace {

enum Kind { kForward = 0, kInputGradient = 1, kKernelGradient = 2 };

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// A primitive with the memory layouts it wants. Images stay NHWC (a reorder of an activation
// costs as much as the convolution saves); the kernel, small, is reordered to oneDNN's blocked
// layout when the primitive wants one.
struct Plan {
  dnnl::primitive conv;
  dnnl::memory::desc image, kernel, output, scratchpad, user_kernel;
};

std::shared_ptr<Plan> MakePlan(int kind, const dims& x, const dims& w, const dims& y,
                               const dims& strides, const dims& pad_lo, const dims& pad_hi,
                               int64_t groups) {
  auto& engine = Engine();
  auto f32 = dnnl::memory::data_type::f32;
  dnnl::memory::desc image(x, f32, tag::nhwc), output(y, f32, tag::nhwc);
  dnnl::memory::desc any_kernel(w, f32, tag::any);
  dnnl::memory::desc user_kernel(w, f32, groups > 1 ? tag::hwigo : tag::hwio);
  dnnl::primitive_attr attr;  // scratch memory from the caller: primitives run concurrently
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  auto direct = dnnl::algorithm::convolution_direct;
  dnnl::convolution_forward::primitive_desc forward(
      engine, dnnl::prop_kind::forward_training, direct, image, any_kernel, output, strides,
      pad_lo, pad_hi, kind == kForward ? attr : dnnl::primitive_attr());
  auto plan = std::make_shared<Plan>();
  plan->image = image, plan->output = output, plan->user_kernel = user_kernel;
  if (kind == kForward) {
    plan->conv = dnnl::convolution_forward(forward);
    plan->kernel = forward.weights_desc(), plan->scratchpad = forward.scratchpad_desc();
  } else if (kind == kInputGradient) {
    dnnl::convolution_backward_data::primitive_desc backward(
        engine, direct, image, any_kernel, output, strides, pad_lo, pad_hi, forward, attr);
    plan->conv = dnnl::convolution_backward_data(backward);
    plan->kernel = backward.weights_desc(), plan->scratchpad = backward.scratchpad_desc();
  } else {
    dnnl::convolution_backward_weights::primitive_desc backward(
        engine, direct, image, any_kernel, output, strides, pad_lo, pad_hi, forward, attr);
    plan->conv = dnnl::convolution_backward_weights(backward);
    plan->kernel = backward.diff_weights_desc(), plan->scratchpad = backward.scratchpad_desc();
  }
  return plan;
}

// Creating a primitive compiles its kernels (milliseconds): one per shape, kept for the process.
std::shared_ptr<Plan> PlanFor(int kind, const dims& x, const dims& w, const dims& y,
                              const dims& strides, const dims& pad_lo, const dims& pad_hi,
                              int64_t groups) {
  static std::mutex mutex;
  static std::unordered_map<std::string, std::shared_ptr<Plan>> plans;
  std::string key = std::to_string(kind) + ' ' + std::to_string(groups);
  for (const dims* d : {&x, &w, &y, &strides, &pad_lo, &pad_hi}) {
    key += '|';
    for (auto n : *d) key += std::to_string(n) + ',';
  }
  std::lock_guard<std::mutex> lock(mutex);
  auto& plan = plans[key];
  if (!plan) plan = MakePlan(kind, x, w, y, strides, pad_lo, pad_hi, groups);
  return plan;
}

dims Dims(ffi::Span<const int64_t> s) { return dims(s.begin(), s.end()); }
// oneDNN's logical orders: images (N, C, H, W), kernels (O, I, H, W) or (G, O/G, I/G, H, W).
dims Image(ffi::Span<const int64_t> nhwc) { return {nhwc[0], nhwc[3], nhwc[1], nhwc[2]}; }
dims Kernel(ffi::Span<const int64_t> hwio, int64_t groups) {
  if (groups == 1) return {hwio[3], hwio[2], hwio[0], hwio[1]};
  return {groups, hwio[3] / groups, hwio[2], hwio[0], hwio[1]};
}

// kind = kForward: (a, b, out) = (x, kernel, y); kInputGradient: (dy, kernel, dx);
// kKernelGradient: (x, dy, dkernel).
ffi::Error Convolve(ffi::Buffer<ffi::F32> a, ffi::Buffer<ffi::F32> b,
                    ffi::ResultBuffer<ffi::F32> out, int64_t kind,
                    ffi::Span<const int64_t> strides, ffi::Span<const int64_t> pad_lo,
                    ffi::Span<const int64_t> pad_hi, int64_t groups) {
  if (kind < kForward || kind > kKernelGradient)
    return ffi::Error::InvalidArgument("oneDNN convolution: kind must be 0, 1 or 2");
  float* x = kind == kInputGradient ? out->typed_data() : a.typed_data();
  float* w = kind == kKernelGradient ? out->typed_data() : b.typed_data();
  float* y = kind == kForward ? out->typed_data() : kind == kInputGradient ? a.typed_data()
                                                                            : b.typed_data();
  auto x_dims = kind == kInputGradient ? out->dimensions() : a.dimensions();
  auto w_dims = kind == kKernelGradient ? out->dimensions() : b.dimensions();
  auto y_dims = kind == kForward ? out->dimensions() : kind == kInputGradient ? a.dimensions()
                                                                               : b.dimensions();
  try {
    auto plan = PlanFor(kind, Image(x_dims), Kernel(w_dims, groups), Image(y_dims),
                        Dims(strides), Dims(pad_lo), Dims(pad_hi), groups);
    auto& engine = Engine();
    dnnl::stream stream(engine);
    thread_local std::vector<char> scratchpad, blocked_kernel;
    if (scratchpad.size() < plan->scratchpad.get_size())
      scratchpad.resize(plan->scratchpad.get_size());
    dnnl::memory user_kernel(plan->user_kernel, engine, w), kernel = user_kernel;
    bool reorder = plan->kernel != plan->user_kernel;
    if (reorder) {
      if (blocked_kernel.size() < plan->kernel.get_size())
        blocked_kernel.resize(plan->kernel.get_size());
      kernel = dnnl::memory(plan->kernel, engine, blocked_kernel.data());
      if (kind != kKernelGradient)
        dnnl::reorder(user_kernel, kernel).execute(stream, user_kernel, kernel);
    }
    dnnl::memory image(plan->image, engine, x), output(plan->output, engine, y);
    dnnl::memory scratch(plan->scratchpad, engine, scratchpad.data());
    if (kind == kForward) {
      plan->conv.execute(stream, {{DNNL_ARG_SRC, image}, {DNNL_ARG_WEIGHTS, kernel},
                                  {DNNL_ARG_DST, output}, {DNNL_ARG_SCRATCHPAD, scratch}});
    } else if (kind == kInputGradient) {
      plan->conv.execute(stream, {{DNNL_ARG_DIFF_DST, output}, {DNNL_ARG_WEIGHTS, kernel},
                                  {DNNL_ARG_DIFF_SRC, image}, {DNNL_ARG_SCRATCHPAD, scratch}});
    } else {
      plan->conv.execute(stream, {{DNNL_ARG_SRC, image}, {DNNL_ARG_DIFF_DST, output},
                                  {DNNL_ARG_DIFF_WEIGHTS, kernel}, {DNNL_ARG_SCRATCHPAD, scratch}});
      if (reorder) dnnl::reorder(kernel, user_kernel).execute(stream, kernel, user_kernel);
    }
    stream.wait();
  } catch (const dnnl::error& e) {
    return ffi::Error::Internal(std::string("oneDNN convolution: ") + e.what());
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(OneDnnConvolution, Convolve,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("kind")
                                  .Attr<ffi::Span<const int64_t>>("strides")
                                  .Attr<ffi::Span<const int64_t>>("pad_lo")
                                  .Attr<ffi::Span<const int64_t>>("pad_hi")
                                  .Attr<int64_t>("groups"));
