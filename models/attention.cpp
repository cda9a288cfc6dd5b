#include "models/attention.h"

#include <cmath>

#include "models/attention_kernel.h"
#include "models/fused_attention.h"

namespace aiayn {

namespace F = torch::nn::functional;

KeyValue KeyValue::select(const torch::Tensor& index) const {
  return {keys.index_select(0, index), values.index_select(0, index)};
}

namespace {

// Room for `length` positions and then some: capacity doubles, so appending
// one position per step copies the history O(log T) times, not T times.
int64_t grown_capacity(int64_t length) {
  int64_t capacity = 16;
  while (capacity < length) capacity *= 2;
  return capacity;
}

torch::Tensor empty_store(const torch::Tensor& like, int64_t rows, int64_t capacity) {
  return torch::empty({rows, like.size(1), capacity, like.size(3)}, like.options());  // [B, h, capacity, d]
}

}  // namespace

KeyValue KeyValueCache::view() const {
  return {key_store.narrow(2, 0, length), value_store.narrow(2, 0, length)};  // [B, h, length, d]
}

void KeyValueCache::append(const KeyValue& kv) {
  const int64_t needed = length + kv.keys.size(2);
  if (!defined() || needed > key_store.size(2)) {
    KeyValueCache grown;
    grown.key_store = empty_store(kv.keys, kv.keys.size(0), grown_capacity(needed));
    grown.value_store = empty_store(kv.values, kv.values.size(0), grown_capacity(needed));
    grown.length = length;
    if (length > 0) {
      auto old = view();
      grown.key_store.narrow(2, 0, length).copy_(old.keys);
      grown.value_store.narrow(2, 0, length).copy_(old.values);
    }
    *this = std::move(grown);
  }
  key_store.narrow(2, length, kv.keys.size(2)).copy_(kv.keys);
  value_store.narrow(2, length, kv.values.size(2)).copy_(kv.values);
  length = needed;
}

KeyValueCache KeyValueCache::select(const torch::Tensor& index) const {
  if (!defined()) return {};
  KeyValueCache kept;
  // Room for the next step only: beam search selects at every step, and
  // stores as large as the old ones cost memory without saving any copy.
  const int64_t capacity = length + 1, rows = index.size(0);
  kept.key_store = empty_store(key_store, rows, capacity);
  kept.value_store = empty_store(value_store, rows, capacity);
  kept.length = length;
  auto held = view(), into = kept.view();
  // Gathered straight into the new stores' leading positions: one copy.
  at::index_select_out(into.keys, held.keys, 0, index);
  at::index_select_out(into.values, held.values, 0, index);
  return kept;
}

torch::Tensor padding_mask(const torch::Tensor& ids, int64_t pad_id) {
  return ids.eq(pad_id);  // [B, S]
}

torch::Tensor key_mask(const torch::Tensor& padding) {
  return padding.unsqueeze(1).unsqueeze(2);  // [B, 1, 1, S]
}

torch::Tensor causal_mask(int64_t length, int64_t past, const torch::Device& device) {
  auto opts = torch::TensorOptions().dtype(torch::kBool).device(device);
  return torch::ones({length, past + length}, opts).triu(past + 1);  // [T, past + T]
}

namespace {

// Beams sharing their sentence's memory (q has `group` rows per row of k and
// v): folded into the query axis, so that every path reads the memory once
// instead of a copy per beam. Possible where the mask does not vary by query
// row: undefined, or [B or 1, 1, 1, S] (padding).
bool foldable(const torch::Tensor& k, const torch::Tensor& mask) {
  return !mask.defined() ||
         (mask.dim() == 4 && (mask.size(0) == k.size(0) || mask.size(0) == 1) && mask.size(2) == 1);
}

torch::Tensor fold_rows(const torch::Tensor& t, int64_t group) {  // [B*g, h, T, w] -> [B, h, g*T, w]
  return t
      .view({t.size(0) / group, group, t.size(1), t.size(2), t.size(3)})       // [B, g, h, T, w]
      .transpose(1, 2)                                                         // [B, h, g, T, w]
      .reshape({t.size(0) / group, t.size(1), group * t.size(2), t.size(3)});  // [B, h, g*T, w]
}

torch::Tensor unfold_rows(const torch::Tensor& t, int64_t group) {  // [B, h, g*T, w] -> [B*g, h, T, w]
  const int64_t rows = t.size(2) / group;
  return t
      .view({t.size(0), t.size(1), group, rows, t.size(3)})       // [B, h, g, T, w]
      .transpose(1, 2)                                            // [B, g, h, T, w]
      .reshape({t.size(0) * group, t.size(1), rows, t.size(3)});  // [B*g, h, T, w]
}

}  // namespace

torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                           const torch::Tensor& v, const torch::Tensor& mask, double dropout,
                                           bool training, torch::Tensor* weights, bool causal) {
  if (attention_core_applies(q, k, v, dropout, training)) {
    return attention_core(q, k, v, mask, weights);  // [B, h, T, d_v]
  }
  if (q.size(0) != k.size(0)) {  // beams sharing their sentence's memory
    const int64_t group = q.size(0) / k.size(0);
    if (foldable(k, mask)) {
      torch::Tensor folded_weights;
      auto out = scaled_dot_product_attention(fold_rows(q, group), k, v, mask, dropout, training,
                                              weights ? &folded_weights : nullptr);  // [B, h, g*T, d_v]
      if (weights != nullptr) *weights = unfold_rows(folded_weights, group);         // [B*g, h, T, S]
      return unfold_rows(out, group);                                                // [B*g, h, T, d_v]
    }
    auto per_row = [&](const torch::Tensor& t) {
      return t.defined() && t.dim() == 4 && t.size(0) == k.size(0) ? t.repeat_interleave(group, 0) : t;
    };
    return scaled_dot_product_attention(q, per_row(k), per_row(v), per_row(mask), dropout, training,
                                        weights);  // [B, h, T, d_v]
  }
  // Fused where nobody asked for the weights (LibTorch 2.x: flash or
  // memory-efficient kernels on CUDA); the explicit product below otherwise.
  if (weights == nullptr && fused_attention_available()) {
    return fused_attention(q, k, v, mask, training ? dropout : 0.0, causal);  // [B, h, T, d_v]
  }
  // Scaling q rather than the scores touches T*d_k numbers instead of T*S.
  auto scores = torch::matmul(q * (1.0 / std::sqrt(static_cast<double>(q.size(-1)))),
                              k.transpose(-2, -1));  // [B, h, T, S]
  if (mask.defined()) scores = scores.masked_fill(mask, -std::numeric_limits<float>::infinity());
  auto p = torch::softmax(scores, -1);  // [B, h, T, S]
  if (dropout > 0.0 && training) p = F::dropout(p, F::DropoutFuncOptions().p(dropout).training(true));
  if (weights != nullptr) *weights = p;
  return torch::matmul(p, v);  // [B, h, T, d_v]
}

MultiHeadAttentionImpl::MultiHeadAttentionImpl(const MultiHeadAttentionOptions& o) : options(o) {
  TORCH_CHECK(o.d_model() > 0 && o.heads() > 0 && o.d_k() > 0 && o.d_v() > 0,
              "MultiHeadAttention: sizes must be positive");
  const int64_t rows = o.heads() * (2 * o.d_k() + o.d_v());
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({rows, o.d_model()}));
  in_proj_bias = register_parameter("in_proj_bias", torch::empty({rows}));
  out_proj = register_module("out_proj",
                             torch::nn::Linear(torch::nn::LinearOptions(o.heads() * o.d_v(), o.d_model())));
  const int64_t hk = o.heads() * o.d_k();
  qkv_ = Projection(in_proj_weight, in_proj_bias);
  q_ = Projection(in_proj_weight, in_proj_bias, 0, hk);
  kv_ = Projection(in_proj_weight, in_proj_bias, hk, rows - hk);
  o_ = Projection(out_proj->weight, out_proj->bias);
  reset_parameters();
}

void MultiHeadAttentionImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  // The paper gives no initialisation. Xavier-uniform per projection matrix
  // W^Q, W^K, W^V with gain 1/sqrt(2), as fairseq initialises them (and as
  // torch.nn.MultiheadAttention's Xavier over the fused block works out for
  // d_k = d_model / h); with gain 1, Multi30k training learned markedly
  // slower than the torch.nn reference (bench/train_reference.py).
  const int64_t hk = options.heads() * options.d_k();
  for (auto& w : in_proj_weight.split_with_sizes({hk, hk, options.heads() * options.d_v()}, 0)) {
    torch::nn::init::xavier_uniform_(w, 1.0 / std::sqrt(2.0));
  }
  in_proj_bias.zero_();
  // W^O keeps torch::nn::Linear's U(+-1/sqrt(fan_in)), as in torch.nn.MultiheadAttention.
  out_proj->reset_parameters();
  out_proj->bias.zero_();
}

torch::Tensor MultiHeadAttentionImpl::split_heads(const torch::Tensor& x, int64_t width) const {
  return x
      .view({x.size(0), x.size(1), options.heads(), width})  // [B, T, h, width]
      .transpose(1, 2);                                      // [B, h, T, width]
}

torch::Tensor MultiHeadAttentionImpl::attend_and_merge(const torch::Tensor& q, const KeyValue& kv,
                                                       const torch::Tensor& mask, torch::Tensor* weights,
                                                       bool causal) {
  auto heads = scaled_dot_product_attention(q, kv.keys, kv.values, mask, options.dropout(), is_training(),
                                            weights, causal);  // [B, h, T, d_v]
  if (masked_.defined()) {
    const auto index = masked_.to(heads.device());
    heads = heads.index_fill(1, index, 0.0);                                // [B, h, T, d_v]
    if (weights != nullptr) *weights = weights->index_fill(1, index, 0.0);  // [B, h, T, S]
  }
  auto concat = heads.transpose(1, 2).reshape(
      {heads.size(0), heads.size(2), options.heads() * options.d_v()});  // [B, T, h*d_v]
  return o_(concat);                                                     // [B, T, d_model]
}

void MultiHeadAttentionImpl::mask_heads(const std::vector<int64_t>& heads) {
  for (int64_t h : heads) {
    TORCH_CHECK(h >= 0 && h < options.heads(), "mask_heads: head ", h, " of ", options.heads());
  }
  masked_ = heads.empty() ? torch::Tensor() : torch::tensor(heads, torch::kLong);  // [n]
}

void MultiHeadAttentionImpl::quantize_int8() {
  for (auto* p : {&qkv_, &q_, &kv_, &o_}) p->quantize();
  release_float_weight(in_proj_weight);
  release_float_weight(out_proj->weight);
}

void MultiHeadAttentionImpl::pack_weights(bool cross) {
  if (cross) {
    q_.pack();
    kv_.pack();
  } else {
    qkv_.pack();
  }
  o_.pack();
}

torch::Tensor MultiHeadAttentionImpl::self_attention(const torch::Tensor& x, const torch::Tensor& mask,
                                                     KeyValueCache* cache, torch::Tensor* weights,
                                                     bool causal) {
  const int64_t hk = options.heads() * options.d_k();
  auto qkv = qkv_(x);  // [B, T, h*(2 d_k + d_v)]
  auto parts = qkv.split_with_sizes({hk, hk, options.heads() * options.d_v()}, -1);
  auto q = split_heads(parts[0], options.d_k());      // [B, h, T, d_k]
  KeyValue kv{split_heads(parts[1], options.d_k()),   // [B, h, T, d_k]
              split_heads(parts[2], options.d_v())};  // [B, h, T, d_v]
  if (cache != nullptr) {
    cache->append(kv);
    kv = cache->view();  // [B, h, past + T, d_k|d_v]
  }
  return attend_and_merge(q, kv, mask, weights, causal);
}

KeyValue MultiHeadAttentionImpl::project_memory(const torch::Tensor& memory) {
  const int64_t hk = options.heads() * options.d_k();
  auto kv = kv_(memory);  // [B, S, h*(d_k + d_v)]
  auto parts = kv.split_with_sizes({hk, options.heads() * options.d_v()}, -1);
  return {split_heads(parts[0], options.d_k()),   // [B, h, S, d_k]
          split_heads(parts[1], options.d_v())};  // [B, h, S, d_v]
}

torch::Tensor MultiHeadAttentionImpl::cross_attention(const torch::Tensor& x, const KeyValue& memory,
                                                      const torch::Tensor& mask, torch::Tensor* weights) {
  auto q = q_(x);                                                                 // [B, T, h*d_k]
  return attend_and_merge(split_heads(q, options.d_k()), memory, mask, weights);  // [B, T, d_model]
}

}  // namespace aiayn
