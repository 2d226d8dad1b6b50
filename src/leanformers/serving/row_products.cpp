// Products of a few rows against a float32 weight, for the compiled serving step (serving/row_products.py).
//
// A decoding step multiplies a handful of rows by every weight of the model once: it is bound by reading the
// weights, and the general-purpose kernels read them well below the memory's speed at 1-32 rows. Here the weight
// is packed in blocks of BLOCK output columns, each block's K rows of BLOCK values contiguous, and every block is
// read once from memory while a tile of up to ROW_TILE rows accumulates in registers. With more rows than one tile
// (prompts, large batches) the product is bound by arithmetic instead, and a tile spans two blocks and fewer rows
// (WIDE_ROW_TILE), so that each value loaded feeds more multiply-adds. A row's result does not depend on the other
// rows or on the tile (the sum over K runs in the same order), so batching never changes it.

#include <torch/csrc/inductor/aoti_torch/c/shim.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#if defined(__AVX512F__)
// 32 vector registers: 8 rows x 2 vectors of sums, or 6 rows x 4 over two blocks
constexpr int LANES = 16, ROW_TILE = 8, WIDE_ROW_TILE = 6;
#elif defined(__AVX__)
constexpr int LANES = 8, ROW_TILE = 6, WIDE_ROW_TILE = 0;  // 16 registers: 6 x 2 sums, 2 weights, 1 broadcast
#else
constexpr int LANES = 4, ROW_TILE = 6, WIDE_ROW_TILE = 0;
#endif
constexpr int BLOCK = 2 * LANES;
constexpr int64_t PREFETCH = 32 * BLOCK;  // values ahead of the one read: the next blocks' rows, on their way
constexpr int LINE = 64 / sizeof(float);   // values in a cache line: each line of a row is asked for ahead

typedef float Lanes __attribute__((vector_size(LANES * sizeof(float)), aligned(sizeof(float))));

namespace {  // internal: another library's instances of these templates must never stand in for this one's

inline Lanes load(const float* from) { return *reinterpret_cast<const Lanes*>(from); }  // Lanes: any alignment

// out[r][0..cols) = x[r] . weights + bias for the ROWS rows of x (row stride ldx) against BLOCKS packed blocks,
// one after the other from `block`.
template <int ROWS, int BLOCKS>
void tile(const float* x, int64_t ldx, int64_t depth, const float* block, const float* bias, float* out,
          int64_t ldo, int cols) {
  constexpr int VECTORS = 2 * BLOCKS;
  Lanes sums[ROWS][VECTORS] = {};
  for (int64_t k = 0; k < depth; ++k) {
    Lanes weights[VECTORS];
    for (int b = 0; b < BLOCKS; ++b) {
      const float* row = block + b * depth * BLOCK + k * BLOCK;
      for (int line = 0; line < BLOCK; line += LINE) __builtin_prefetch(row + PREFETCH + line);
      weights[2 * b] = load(row);
      weights[2 * b + 1] = load(row + LANES);
    }
#pragma GCC unroll 16
    for (int r = 0; r < ROWS; ++r) {
      float value = x[r * ldx + k];
      for (int v = 0; v < VECTORS; ++v) sums[r][v] += value * weights[v];
    }
  }
  for (int r = 0; r < ROWS; ++r) {
    float row[VECTORS * LANES];
    for (int v = 0; v < VECTORS; ++v) {
      Lanes total = bias != nullptr ? sums[r][v] + load(bias + v * LANES) : sums[r][v];
      std::memcpy(row + v * LANES, &total, sizeof total);
    }
    std::memcpy(out + r * ldo, row, cols * sizeof(float));
  }
}

typedef void (*Tile)(const float*, int64_t, int64_t, const float*, const float*, float*, int64_t, int);

// The tiles of 1..N rows over BLOCKS blocks, indexed by their row count (index 0 unused).
template <int BLOCKS, int... N>
constexpr std::array<Tile, sizeof...(N) + 1> tiles(std::integer_sequence<int, N...>) {
  return {nullptr, tile<N + 1, BLOCKS>...};
}
constexpr auto TILES = tiles<1>(std::make_integer_sequence<int, ROW_TILE>{});
constexpr auto WIDE_TILES = tiles<2>(std::make_integer_sequence<int, WIDE_ROW_TILE>{});

void products(const float* x, int64_t rows, int64_t ldx, int64_t depth, const float* packed, int64_t columns,
              const float* bias, float* out) {
  int64_t blocks = (columns + BLOCK - 1) / BLOCK;
  int span = WIDE_ROW_TILE > 0 && rows > ROW_TILE ? 2 : 1;  // blocks a tile spans
#pragma omp parallel for schedule(static)
  for (int64_t first = 0; first < blocks; first += span) {
    int spanned = (int)(blocks - first < span ? blocks - first : span);
    int cols = (int)(columns - first * BLOCK < spanned * BLOCK ? columns - first * BLOCK : spanned * BLOCK);
    float padded_bias[2 * BLOCK] = {};
    const float* tile_bias = nullptr;
    if (bias != nullptr) {  // the tile's bias, the last block's padded to a whole block
      std::memcpy(padded_bias, bias + first * BLOCK, cols * sizeof(float));
      tile_bias = padded_bias;
    }
    int row_tile = spanned == 2 ? WIDE_ROW_TILE : ROW_TILE;
    const Tile* table = spanned == 2 ? WIDE_TILES.data() : TILES.data();
    for (int64_t r = 0; r < rows; r += row_tile) {
      int tile_rows = (int)(rows - r < row_tile ? rows - r : row_tile);
      table[tile_rows](x + r * ldx, ldx, depth, packed + first * depth * BLOCK, tile_bias,
                       out + r * columns + first * BLOCK, columns, cols);
    }
  }
}

}  // namespace

extern "C" {

// The column block the weights are packed in (serving/row_products.py packs for it).
int leanformers_rows_block() { return BLOCK; }

// The compiled step's call for leanformers::rows_linear(x, packed, bias, columns): x (rows, depth) with unit column
// stride, packed (blocks, depth, BLOCK), bias (columns,) or none; a new (rows, columns) tensor in *out.
AOTITorchError aoti_torch_cpu_rows_linear(AtenTensorHandle x, AtenTensorHandle packed, AtenTensorHandle* bias,
                                          int64_t columns, AtenTensorHandle* out) {
  int64_t *x_sizes, *x_strides, *packed_sizes;
  void *x_data, *packed_data, *bias_data = nullptr, *out_data;
  if (aoti_torch_get_sizes(x, &x_sizes) || aoti_torch_get_strides(x, &x_strides) ||
      aoti_torch_get_sizes(packed, &packed_sizes) || aoti_torch_get_data_ptr(x, &x_data) ||
      aoti_torch_get_data_ptr(packed, &packed_data) ||
      (bias != nullptr && *bias != nullptr && aoti_torch_get_data_ptr(*bias, &bias_data)))
    return AOTI_TORCH_FAILURE;
  int64_t rows = x_sizes[0], depth = x_sizes[1];
  if ((x_strides[1] != 1 && depth > 1) || packed_sizes[1] != depth || packed_sizes[2] != BLOCK ||
      packed_sizes[0] * BLOCK < columns)
    return AOTI_TORCH_FAILURE;
  int64_t sizes[2] = {rows, columns}, strides[2] = {columns, 1};
  if (aoti_torch_empty_strided(2, sizes, strides, aoti_torch_dtype_float32(), aoti_torch_device_type_cpu(), 0, out) ||
      aoti_torch_get_data_ptr(*out, &out_data))
    return AOTI_TORCH_FAILURE;
  products((const float*)x_data, rows, x_strides[0], depth, (const float*)packed_data, columns,
           (const float*)bias_data, (float*)out_data);
  return AOTI_TORCH_SUCCESS;
}
}
