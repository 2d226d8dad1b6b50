// The weight products of row_products.cpp as the torch operator leanformers::packed_linear, for decoding steps that
// torch.compile builds with frozen weights (packed_products.py).

#include "serving/row_products.cpp"

#include <ATen/ATen.h>
#include <torch/library.h>

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

}  // namespace

TORCH_LIBRARY_FRAGMENT(leanformers, m) {
  m.def("packed_linear(Tensor x, Tensor packed, Tensor? bias, int columns) -> Tensor");
  m.impl("packed_linear", c10::DispatchKey::CPU, TORCH_FN(packed_linear));
}
