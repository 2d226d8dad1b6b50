// Torch operators for decoding steps that torch.compile builds with frozen weights (step_operators.py): the weight
// products of row_products.cpp (leanformers::packed_linear) and the attention of one new token per row
// (leanformers::step_attention).

#include "serving/row_products.cpp"

#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>
#if defined(__AVX__)
#include <immintrin.h>
#endif
#include <limits>
#include <vector>

namespace {

at::Tensor packed_linear(const at::Tensor& x, const at::Tensor& packed, const std::optional<at::Tensor>& bias,
                         int64_t columns) {
  TORCH_CHECK(x.dim() == 2 && x.stride(1) == 1 && x.scalar_type() == at::kFloat, "x: (rows, depth) float32");
  TORCH_CHECK(packed.is_contiguous() && packed.size(1) == x.size(1) && packed.size(2) == BLOCK &&
              packed.size(0) * BLOCK >= columns, "packed: (blocks, depth, ", BLOCK, ") for ", columns, " columns");
  auto out = at::empty({x.size(0), columns}, x.options());
  products(x.const_data_ptr<float>(), x.size(0), x.stride(0), x.size(1), packed.const_data_ptr<float>(), columns,
           bias.has_value() ? bias->const_data_ptr<float>() : nullptr, out.mutable_data_ptr<float>());
  return out;
}

typedef int32_t IntLanes __attribute__((vector_size(LANES * sizeof(int32_t))));

inline float sum_lanes(Lanes v) {
#if defined(__AVX512F__)
  return _mm512_reduce_add_ps((__m512)v);
#elif defined(__AVX__)
  __m128 half = _mm_add_ps(_mm256_castps256_ps128((__m256)v), _mm256_extractf128_ps((__m256)v, 1));
  half = _mm_add_ps(half, _mm_movehl_ps(half, half));
  return _mm_cvtss_f32(_mm_add_ss(half, _mm_movehdup_ps(half)));
#else
  float total = 0;
  for (int lane = 0; lane < LANES; ++lane) total += v[lane];
  return total;
#endif
}

// a . b over `dim` values; VECTORS > 0: dim is VECTORS * LANES, known as this compiles
template <int VECTORS>
inline float dot(const float* a, const float* b, int64_t dim) {
  Lanes sum = {};
  int64_t i = 0;
  for (; i + LANES <= (VECTORS > 0 ? VECTORS * LANES : dim); i += LANES) sum += load(a + i) * load(b + i);
  float total = sum_lanes(sum);
  for (; VECTORS == 0 && i < dim; ++i) total += a[i] * b[i];
  return total;
}

// out = sum of weights[s] * values[kept[s]] / total; VECTORS > 0: dim is VECTORS * LANES, the sums in registers
template <int VECTORS>
void weighted_sum(const float* weights, const int64_t* kept, int64_t count, const float* values, int64_t stride,
                  int64_t dim, float total, float* out) {
  if constexpr (VECTORS > 0) {
    Lanes sums[VECTORS] = {};
    for (int64_t s = 0; s < count; ++s) {
      const float* value = values + kept[s] * stride;
      for (int i = 0; i < VECTORS; ++i) sums[i] += weights[s] * load(value + i * LANES);
    }
    for (int i = 0; i < VECTORS; ++i) {
      Lanes mean = sums[i] / total;
      std::memcpy(out + i * LANES, &mean, sizeof mean);
    }
  } else {
    for (int64_t d = 0; d < dim; ++d) out[d] = 0;
    for (int64_t s = 0; s < count; ++s)
      for (int64_t d = 0; d < dim; ++d) out[d] += weights[s] * values[kept[s] * stride + d];
    for (int64_t d = 0; d < dim; ++d) out[d] /= total;
  }
}

// e^x for x <= 0 (Cephes' expf: x = n ln2 + r, e^r by a polynomial, 2^n in the exponent bits). Below -87 it gives
// ~2^-126 for what is smaller still: either way nothing beside the top score's weight of 1.
inline Lanes exp_lanes(Lanes x) {
  x = x < -87.0f ? Lanes{} - 87.0f : x;
  Lanes t = x * 1.44269504088896341f + 0.5f;
  IntLanes n = __builtin_convertvector(t, IntLanes);
  n += __builtin_convertvector(n, Lanes) > t;  // truncation toward zero -> floor
  Lanes whole = __builtin_convertvector(n, Lanes);
  Lanes r = x - whole * 0.693359375f + whole * 2.12194440e-4f;
  Lanes p = 1.9875691500e-4f * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * (Lanes)((n + 127) << 23);
}

// One query head's attention: out = softmax(q . keys * scale + mask) . values over the keys the mask keeps. A key
// masked with -inf or the lowest float weighs exactly 0 in SDPA too, unless every key is masked (then zeros here, as
// SDPA gives for -inf). `scores` and `kept` hold `length` + LANES values.
template <int VECTORS>
void one_query(const float* q, const float* keys, const float* values, int64_t key_stride, int64_t value_stride,
               int64_t length, int64_t dim, const float* mask, int64_t mask_stride, float scale, float* scores,
               int64_t* kept, float* out) {
  int64_t count = 0;
  float top = -INFINITY;
  for (int64_t s = 0; s < length; ++s) {
    const float added = mask != nullptr ? mask[s * mask_stride] : 0.0f;
    if (added <= std::numeric_limits<float>::lowest()) continue;
    const float score = dot<VECTORS>(q, keys + s * key_stride, dim) * scale + added;
    top = score > top ? score : top;
    kept[count] = s, scores[count++] = score;
  }
  if (count == 0) {
    std::memset(out, 0, dim * sizeof(float));
    return;
  }
  for (int64_t s = count; s % LANES; ++s) scores[s] = -INFINITY;  // whole vectors; exp gives ~0, left out below
  for (int64_t s = 0; s < count; s += LANES) {
    Lanes weights = exp_lanes(load(scores + s) - top);
    std::memcpy(scores + s, &weights, sizeof weights);
  }
  float total = 0;
  for (int64_t s = 0; s < count; ++s) total += scores[s];
  weighted_sum<VECTORS>(scores, kept, count, values, value_stride, dim, total, out);
}

typedef void (*OneQuery)(const float*, const float*, const float*, int64_t, int64_t, int64_t, int64_t, const float*,
                         int64_t, float, float*, int64_t*, float*);

OneQuery one_query_for(int64_t dim) {
  switch (dim % LANES ? 0 : dim / LANES) {
    case 1: return one_query<1>;
    case 2: return one_query<2>;
    case 4: return one_query<4>;
    case 8: return one_query<8>;
    default: return one_query<0>;
  }
}

// Attention of one query per row: q (batch, heads, 1, dim), k and v (batch, key heads, keys, dim), each key head
// serving heads / key heads consecutive query heads; mask additive, broadcastable to (batch, heads, 1, keys).
at::Tensor step_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          const std::optional<at::Tensor>& mask, double scale) {
  TORCH_CHECK(q.dim() == 4 && q.size(2) == 1 && k.dim() == 4 && v.sizes() == k.sizes() && q.size(3) == k.size(3) &&
              q.size(0) == k.size(0) && q.size(1) % k.size(1) == 0, "q (batch, heads, 1, dim), k and v (batch, ",
              "key heads, keys, dim)");
  TORCH_CHECK(q.scalar_type() == at::kFloat && k.scalar_type() == at::kFloat && v.scalar_type() == at::kFloat,
              "float32 q, k and v");
  const int64_t batch = q.size(0), heads = q.size(1), dim = q.size(3), groups = heads / k.size(1), length = k.size(2);
  const at::Tensor query = q.contiguous(), keys = k.stride(3) == 1 ? k : k.contiguous(),
                   values = v.stride(3) == 1 ? v : v.contiguous();
  const at::Tensor added = mask.has_value() ? mask->to(at::kFloat).expand({batch, heads, 1, length}) : at::Tensor();
  const float* bias = mask.has_value() ? added.const_data_ptr<float>() : nullptr;
  auto out = at::empty({batch, heads, 1, dim}, q.options());
  const OneQuery attend = one_query_for(dim);
#pragma omp parallel
  {
    std::vector<float> scores(length + LANES);
    std::vector<int64_t> kept(length + LANES);
#pragma omp for schedule(static)
    for (int64_t task = 0; task < batch * heads; ++task) {
      const int64_t b = task / heads, h = task % heads, kh = h / groups;
      attend(query.const_data_ptr<float>() + task * dim,
             keys.const_data_ptr<float>() + b * keys.stride(0) + kh * keys.stride(1),
             values.const_data_ptr<float>() + b * values.stride(0) + kh * values.stride(1), keys.stride(2),
             values.stride(2), length, dim,
             bias != nullptr ? bias + b * added.stride(0) + h * added.stride(1) : nullptr,
             bias != nullptr ? added.stride(3) : 0, (float)scale, scores.data(), kept.data(),
             out.mutable_data_ptr<float>() + task * dim);
    }
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(leanformers, m) {
  m.def("packed_linear(Tensor x, Tensor packed, Tensor? bias, int columns) -> Tensor");
  m.impl("packed_linear", c10::DispatchKey::CPU, TORCH_FN(packed_linear));
  m.def("step_attention(Tensor q, Tensor k, Tensor v, Tensor? mask, float scale) -> Tensor");
  m.impl("step_attention", c10::DispatchKey::CPU, TORCH_FN(step_attention));
}
