// The CUDA backend's kernels: the element-wise and row-wise steps of the decoder's training pass
// and Adam's update, each the equation of the CPU backend's version (src/backend/cpu/) written once
// for the GPU. Matrix products are cuBLAS's (src/backend/cuda/blas.rs), not here.
//
// Compiled by build.rs with nvcc to PTX (no --use_fast_math: parity with the CPU and PyTorch),
// embedded in the library and loaded once per device (src/backend/cuda/kernels.rs).
//
// Conventions: row-major float32 matrices; one thread per element unless a kernel says otherwise;
// sizes as int (every buffer here holds fewer than 2^31 elements: caption batches, not images).

#include <stdint.h>

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// A dropout mask's factor for element `at`: `scale` where bit `at` of `bits` is set, else 0
// (masks travel as bits: 32 times fewer bytes to copy than the float32 factors).
__device__ __forceinline__ float dropout_factor(const uint32_t* bits, float scale, size_t at) {
    return (bits[at >> 5] >> (at & 31)) & 1u ? scale : 0.0f;
}

// PyTorch's LSTM cell forward (aten's lstm_cell_forward) for `rows` packed rows from `start`:
// `gates` holds the pre-activations i, f, g, o (4 × units per row; input and recurrent products
// and both biases already summed) and is activated in place (sigmoid, sigmoid, tanh, sigmoid);
// c = f·c_prev + i·g with c_prev the cell of packed row `previous + r` (zeros when previous < 0),
// cells_tanh = tanh(c), hidden = o·tanh(c).
extern "C" __global__ void lstm_cell_forward(float* gates, float* cells, float* cells_tanh, float* hidden,
                                             int start, int previous, int rows, int units) {
    int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= rows * units) return;
    int r = index / units, j = index % units;
    float* g = gates + (size_t)(start + r) * 4 * units;
    float i = sigmoid(g[j]);
    float f = sigmoid(g[units + j]);
    float candidate = tanhf(g[2 * units + j]);
    float o = sigmoid(g[3 * units + j]);
    g[j] = i;
    g[units + j] = f;
    g[2 * units + j] = candidate;
    g[3 * units + j] = o;
    float before = previous >= 0 ? cells[(size_t)(previous + r) * units + j] : 0.0f;
    float c = f * before + i * candidate;
    float c_tanh = tanhf(c);
    size_t at = (size_t)(start + r) * units + j;
    cells[at] = c;
    cells_tanh[at] = c_tanh;
    hidden[at] = o * c_tanh;
}

// The backward pass of lstm_cell_forward for the `rows` packed rows of one step from `start`
// (aten's lstm_cell_backward): the gradient for h is d_output's row plus d_hidden_next's (what
// reaches the step from the next one, row r of the step); d_cell_next holds the gradient for c
// from the next step and becomes the one for c_prev; d_gates receives the gradients for the
// pre-activations. The forget gate's gradient is 0 for a first step (previous < 0: c_prev = 0).
extern "C" __global__ void lstm_cell_backward(const float* gates, const float* cells, const float* cells_tanh,
                                              const float* d_output, const float* d_hidden_next,
                                              float* d_cell_next, float* d_gates, int start, int previous,
                                              int rows, int units) {
    int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= rows * units) return;
    int r = index / units, j = index % units;
    size_t row = (size_t)(start + r);
    const float* g = gates + row * 4 * units;
    float i = g[j], f = g[units + j], candidate = g[2 * units + j], o = g[3 * units + j];
    float c_tanh = cells_tanh[row * units + j];
    float d_h = d_hidden_next[(size_t)r * units + j] + d_output[row * units + j];
    float d_c = d_cell_next[(size_t)r * units + j] + d_h * o * (1.0f - c_tanh * c_tanh);
    float* d = d_gates + row * 4 * units;
    d[j] = d_c * candidate * i * (1.0f - i);
    d[2 * units + j] = d_c * i * (1.0f - candidate * candidate);
    d[3 * units + j] = d_h * c_tanh * o * (1.0f - o);
    d[units + j] = previous >= 0 ? d_c * (cells[(size_t)(previous + r) * units + j] * f * (1.0f - f)) : 0.0f;
    d_cell_next[(size_t)r * units + j] = d_c * f;
}

// Threads per block of the row kernels (softmax_cross_entropy).
#define ROW_THREADS 256

__device__ float block_max(float value, float* shared) {
    for (int offset = 16; offset > 0; offset /= 2) value = fmaxf(value, __shfl_xor_sync(0xffffffff, value, offset));
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) shared[warp] = value;
    __syncthreads();
    value = threadIdx.x < ROW_THREADS / 32 ? shared[threadIdx.x] : -INFINITY;
    if (warp == 0)
        for (int offset = 16; offset > 0; offset /= 2) value = fmaxf(value, __shfl_xor_sync(0xffffffff, value, offset));
    if (threadIdx.x == 0) shared[0] = value;
    __syncthreads();
    value = shared[0];
    __syncthreads();
    return value;
}

__device__ float block_sum(float value, float* shared) {
    for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffff, value, offset);
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) shared[warp] = value;
    __syncthreads();
    value = threadIdx.x < ROW_THREADS / 32 ? shared[threadIdx.x] : 0.0f;
    if (warp == 0)
        for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffff, value, offset);
    if (threadIdx.x == 0) shared[0] = value;
    __syncthreads();
    value = shared[0];
    __syncthreads();
    return value;
}

// The softmax cross-entropy's forward and backward pass, one block of ROW_THREADS per row (the CPU
// backend's softmax_cross_entropy_row): adds `bias` to row k of `logits`, writes the row's loss
// w · (logsumexp − logit[targets[k]]) to losses[k] and turns the row into w · scale · (softmax −
// onehot), w being the row's weight (float32 bits in weight_bits[k]; 1 for cross-entropy).
extern "C" __global__ void softmax_cross_entropy(float* logits, const float* bias, const uint32_t* targets,
                                                 const uint32_t* weight_bits, float* losses, float row_scale,
                                                 int vocab) {
    __shared__ float shared[ROW_THREADS / 32];
    __shared__ float target_logit;
    float* row = logits + (size_t)blockIdx.x * vocab;
    uint32_t target = targets[blockIdx.x];
    float weight = __uint_as_float(weight_bits[blockIdx.x]);
    float scale = row_scale * weight;
    float max = -INFINITY;
    for (int c = threadIdx.x; c < vocab; c += ROW_THREADS) {
        float x = row[c] + bias[c];
        row[c] = x;
        if (c == (int)target) target_logit = x;
        max = fmaxf(max, x);
    }
    max = block_max(max, shared);  // its barriers also publish target_logit
    float sum = 0.0f;
    for (int c = threadIdx.x; c < vocab; c += ROW_THREADS) {
        float e = expf(row[c] - max);
        row[c] = e;
        sum += e;
    }
    sum = block_sum(sum, shared);
    float factor = scale / sum;
    for (int c = threadIdx.x; c < vocab; c += ROW_THREADS) row[c] = row[c] * factor - (c == (int)target ? scale : 0.0f);
    if (threadIdx.x == 0) losses[blockIdx.x] = weight * (logf(sum) - (target_logit - max));
}

// The `count` most probable words of each row of `logits` (rows × vocab, the output layer's
// products without its bias), one block of ROW_THREADS per row, best first: round k takes the
// largest logit + bias after round k − 1's choice, equal values the lower id first (argmax's and a
// stable sort's order). The ids go to words[row · count + k], their log-probabilities (the
// log-softmax x − max − log Σ exp(x − max)) to log_probs[row · count + k]. Greedy decoding is
// count = 1, beam search count = the beam's width. A row of NaN alone gives word 0, log-prob NaN.
// (Ordered by x: two words whose log-probabilities round to the same float keep their logits'
// order, where a sort of the log-probabilities would put the lower id first.)
extern "C" __global__ void top_words(const float* logits, const float* bias, uint32_t* words, float* log_probs,
                                     int vocab, int count) {
    __shared__ float best_values[ROW_THREADS];
    __shared__ int best_words[ROW_THREADS];
    __shared__ float shared[ROW_THREADS / 32];
    const float* row = logits + (size_t)blockIdx.x * vocab;
    // The previous round's choice: this round looks only at what ranks after it.
    float after = INFINITY;
    int after_word = -1;
    float max = 0.0f, log_sum = 0.0f;
    for (int k = 0; k < count; ++k) {
        float best = -INFINITY;
        int word = vocab;  // none yet
        for (int c = threadIdx.x; c < vocab; c += ROW_THREADS) {
            float x = row[c] + bias[c];
            bool ranks_after = x < after || (x == after && c > after_word);
            if (ranks_after && (word == vocab || x > best)) {
                best = x;
                word = c;
            }
        }
        best_values[threadIdx.x] = best;
        best_words[threadIdx.x] = word;
        __syncthreads();
        for (int half = ROW_THREADS / 2; half > 0; half /= 2) {
            if (threadIdx.x < half) {
                float other = best_values[threadIdx.x + half];
                int other_word = best_words[threadIdx.x + half];
                int mine = best_words[threadIdx.x];
                if (other_word != vocab && (mine == vocab || other > best_values[threadIdx.x] ||
                                            (other == best_values[threadIdx.x] && other_word < mine))) {
                    best_values[threadIdx.x] = other;
                    best_words[threadIdx.x] = other_word;
                }
            }
            __syncthreads();
        }
        after = best_values[0];
        after_word = best_words[0];
        __syncthreads();  // every thread has the round's choice before the next round writes
        if (k == 0) {
            max = after;
            float sum = 0.0f;
            for (int c = threadIdx.x; c < vocab; c += ROW_THREADS) sum += expf(row[c] + bias[c] - max);
            log_sum = logf(block_sum(sum, shared));
        }
        if (threadIdx.x == 0) {
            bool none = after_word == vocab;
            words[(size_t)blockIdx.x * count + k] = none ? 0u : (uint32_t)after_word;
            log_probs[(size_t)blockIdx.x * count + k] = none ? NAN : (after - max) - log_sum;
        }
    }
}

// out[r, :] = first + second for `rows` rows of `width` (the LSTM's two biases as the gates'
// starting value; `second` may be null).
extern "C" __global__ void fill_rows(float* out, const float* first, const float* second, int rows, int width) {
    int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= rows * width) return;
    int c = index % width;
    out[index] = second ? first[c] + second[c] : first[c];
}

// out[k, :] = table[index[k], :] · mask[mask_rows[k], :] for `rows` rows of `cols` (an embedding
// lookup or a gather of rows; mask null: no dropout; the mask as dropout_factor's bits and scale).
extern "C" __global__ void gather_rows(float* out, const float* table, const uint32_t* index, const uint32_t* mask,
                                       float mask_scale, const uint32_t* mask_rows, int rows, int cols) {
    int at = blockIdx.x * blockDim.x + threadIdx.x;
    if (at >= rows * cols) return;
    int k = at / cols, c = at % cols;
    float value = table[(size_t)index[k] * cols + c];
    if (mask) value *= dropout_factor(mask, mask_scale, (size_t)mask_rows[k] * cols + c);
    out[at] = value;
}

// out[index[k], :] = source[k, :] for `rows` rows of `cols` (distinct index values).
extern "C" __global__ void scatter_rows(float* out, const float* source, const uint32_t* index, int rows, int cols) {
    int at = blockIdx.x * blockDim.x + threadIdx.x;
    if (at >= rows * cols) return;
    int k = at / cols, c = at % cols;
    out[(size_t)index[k] * cols + c] = source[at];
}

// The embedding's gradient without atomics (so the same on every run): segment s adds the rows
// source[order[starts[s]..starts[s+1]]] (each times its dropout mask row, when there is a mask)
// into out[tokens[s], :], in that order; one thread per (segment, column).
extern "C" __global__ void segment_sum_rows(float* out, const float* source, const uint32_t* starts,
                                            const uint32_t* tokens, const uint32_t* order, const uint32_t* mask,
                                            float mask_scale, const uint32_t* mask_rows, int segments, int cols) {
    int at = blockIdx.x * blockDim.x + threadIdx.x;
    if (at >= segments * cols) return;
    int s = at / cols, c = at % cols;
    float total = out[(size_t)tokens[s] * cols + c];
    for (uint32_t k = starts[s]; k < starts[s + 1]; k++) {
        float value = source[(size_t)order[k] * cols + c];
        if (mask) value *= dropout_factor(mask, mask_scale, (size_t)mask_rows[k] * cols + c);
        total += value;
    }
    out[(size_t)tokens[s] * cols + c] = total;
}

// out[c] = Σ_r matrix[r, c], summed in row order (a bias's gradient).
extern "C" __global__ void column_sums(float* out, const float* matrix, int rows, int cols) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    float total = 0.0f;
    for (int r = 0; r < rows; r++) total += matrix[(size_t)r * cols + c];
    out[c] = total;
}

// values ·= mask, element by element (dropout).
extern "C" __global__ void dropout(float* values, const uint32_t* mask, float mask_scale, int n) {
    int at = blockIdx.x * blockDim.x + threadIdx.x;
    if (at < n) values[at] *= dropout_factor(mask, mask_scale, at);
}

// out = relu(pre) · mask (mask null: none): the encoder's head after fc.
extern "C" __global__ void relu_dropout(float* out, const float* pre, const uint32_t* mask, float mask_scale, int n) {
    int at = blockIdx.x * blockDim.x + threadIdx.x;
    if (at >= n) return;
    float value = fmaxf(pre[at], 0.0f);
    out[at] = mask ? value * dropout_factor(mask, mask_scale, at) : value;
}

// The backward pass of relu_dropout in place: gradient · mask, and 0 where pre ≤ 0 (PyTorch's
// ReLU gradient at 0 is 0).
extern "C" __global__ void relu_dropout_backward(float* gradient, const float* pre, const uint32_t* mask,
                                                 float mask_scale, int n) {
    int at = blockIdx.x * blockDim.x + threadIdx.x;
    if (at >= n) return;
    float value = mask ? gradient[at] * dropout_factor(mask, mask_scale, at) : gradient[at];
    gradient[at] = pre[at] > 0.0f ? value : 0.0f;
}

// Eval-mode batch norm and ReLU in one pass over a convolution's output (N × C × plane), the CPU
// backend's fused epilogue: scale = γ/√(var + ε), shift = β − mean·scale per channel, then
// out = max(x·scale + shift, 0).
extern "C" __global__ void batch_norm_relu_eval(float* out, const float* x, const float* weight, const float* bias,
                                                const float* mean, const float* var, float eps, int channels,
                                                int plane, int n) {
    int at = blockIdx.x * blockDim.x + threadIdx.x;
    if (at >= n) return;
    int c = (at / plane) % channels;
    float scale = weight[c] / sqrtf(var[c] + eps);
    float shift = bias[c] - mean[c] * scale;
    out[at] = fmaxf(x[at] * scale + shift, 0.0f);
}

// Train-mode batch norm's statistics, one block of ROW_THREADS per channel (the CPU backend's
// batch_statistics_relu_cpu): the channel's mean and biased variance over N × plane values of `x`
// (N × channels × plane), accumulated in double (two passes, as PyTorch); then the running
// statistics move towards them in place (running = (1 − momentum)·running + momentum·batch, the
// variance unbiased, blended in double) and the normalisation is written as scale and shift:
// scale = (float)(1/√(var + ε))·γ, shift = β − (float)mean·scale; for a backward pass the mean and
// 1/√(var + ε) are also kept (saved_mean, saved_invstd; null: not kept).
extern "C" __global__ void batch_norm_statistics(const float* x, const float* weight, const float* bias,
                                                 float* running_mean, float* running_var, float* scale,
                                                 float* shift, float* saved_mean, float* saved_invstd, int n,
                                                 int channels, int plane, double momentum, double eps) {
    __shared__ double partial[ROW_THREADS];
    int c = blockIdx.x;
    long long count = (long long)n * plane;
    // Image by image, each plane read in order by the block's threads (coalesced, no division).
    double sum = 0.0;
    for (int image = 0; image < n; image++) {
        const float* values = x + ((size_t)image * channels + c) * plane;
        for (int p = threadIdx.x; p < plane; p += ROW_THREADS) sum += (double)values[p];
    }
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (int half = ROW_THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();
    }
    double mean = partial[0] / (double)count;
    __syncthreads();
    double squares = 0.0;
    for (int image = 0; image < n; image++) {
        const float* values = x + ((size_t)image * channels + c) * plane;
        for (int p = threadIdx.x; p < plane; p += ROW_THREADS) {
            double d = (double)values[p] - mean;
            squares += d * d;
        }
    }
    partial[threadIdx.x] = squares;
    __syncthreads();
    for (int half = ROW_THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x != 0) return;
    double var = partial[0] / (double)count;
    double unbiased = count > 1 ? var * ((double)count / (double)(count - 1)) : var;
    running_mean[c] = (float)((double)running_mean[c] * (1.0 - momentum) + mean * momentum);
    running_var[c] = (float)((double)running_var[c] * (1.0 - momentum) + unbiased * momentum);
    float invstd = (float)(1.0 / sqrt(var + eps));
    float c_scale = invstd * weight[c];
    scale[c] = c_scale;
    shift[c] = bias[c] - (float)mean * c_scale;
    if (saved_mean) saved_mean[c] = (float)mean;
    if (saved_invstd) saved_invstd[c] = invstd;
}

// out = max(x·scale[c] + shift[c], 0) over N × channels × plane (train-mode batch norm + ReLU).
extern "C" __global__ void scale_shift_relu(float* out, const float* x, const float* scale, const float* shift,
                                            int channels, int plane, int n) {
    int at = blockIdx.x * blockDim.x + threadIdx.x;
    if (at >= n) return;
    int c = (at / plane) % channels;
    out[at] = fmaxf(x[at] * scale[c] + shift[c], 0.0f);
}

// The backward pass of train-mode batch norm + ReLU (PyTorch's batch_norm_backward with
// threshold_backward before it), first the per-channel sums, one block of ROW_THREADS per
// channel, in double: with g = grad where the output y > 0 (else 0) and x̂ = (x − mean)·invstd,
// sum_g = Σ g (the bias's gradient) and sum_gx = Σ g·x̂ (the weight's).
extern "C" __global__ void batch_norm_relu_backward_sums(const float* grad, const float* y, const float* x,
                                                         const float* mean, const float* invstd, float* sum_g,
                                                         float* sum_gx, int n, int channels, int plane) {
    __shared__ double partial_g[ROW_THREADS];
    __shared__ double partial_gx[ROW_THREADS];
    int c = blockIdx.x;
    double g_total = 0.0, gx_total = 0.0;
    for (int image = 0; image < n; image++) {
        size_t first = ((size_t)image * channels + c) * plane;
        for (int p = threadIdx.x; p < plane; p += ROW_THREADS) {
            size_t at = first + p;
            double g = y[at] > 0.0f ? (double)grad[at] : 0.0;
            g_total += g;
            gx_total += g * ((double)x[at] - (double)mean[c]) * (double)invstd[c];
        }
    }
    partial_g[threadIdx.x] = g_total;
    partial_gx[threadIdx.x] = gx_total;
    __syncthreads();
    for (int half = ROW_THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) {
            partial_g[threadIdx.x] += partial_g[threadIdx.x + half];
            partial_gx[threadIdx.x] += partial_gx[threadIdx.x + half];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        sum_g[c] = (float)partial_g[0];
        sum_gx[c] = (float)partial_gx[0];
    }
}

// ... then the input's gradient, element by element over N × channels × plane (M = N·plane values
// per channel): d_x = γ·invstd·(g − sum_g/M − x̂·sum_gx/M).
extern "C" __global__ void batch_norm_relu_backward_input(float* d_x, const float* grad, const float* y,
                                                          const float* x, const float* mean, const float* invstd,
                                                          const float* weight, const float* sum_g,
                                                          const float* sum_gx, int channels, int plane, int n,
                                                          float count) {
    int at = blockIdx.x * blockDim.x + threadIdx.x;
    if (at >= n) return;
    int c = (at / plane) % channels;
    float g = y[at] > 0.0f ? grad[at] : 0.0f;
    float x_hat = (x[at] - mean[c]) * invstd[c];
    d_x[at] = weight[c] * invstd[c] * (g - sum_g[c] / count - x_hat * sum_gx[c] / count);
}

// Adam's (and AdamW's) update of one parameter in one pass (the CPU backend's AdamUpdate): with
// g' = g·grad_scale + l2·θ, m += (1 − β₁)(g' − m), v = β₂v + (1 − β₂)g'², then
// θ = θ·decay − step_size · m / (√v / bias2_sqrt + ε).
extern "C" __global__ void adam_update(float* theta, float* exp_avg, float* exp_avg_sq, const float* grad, int n,
                                       float beta1, float beta2, float grad_scale, float l2, float decay,
                                       float step_size, float bias2_sqrt, float eps) {
    int at = blockIdx.x * blockDim.x + threadIdx.x;
    if (at >= n) return;
    float t = theta[at];
    float g = l2 == 0.0f ? grad[at] * grad_scale : grad[at] * grad_scale + l2 * t;
    float m = exp_avg[at];
    m += (1.0f - beta1) * (g - m);
    float v = exp_avg_sq[at] * beta2 + (1.0f - beta2) * g * g;
    exp_avg[at] = m;
    exp_avg_sq[at] = v;
    theta[at] = t * decay - step_size * (m / (sqrtf(v) / bias2_sqrt + eps));
}
