/* nurinet's optional native kernels: fused float32 loops that NumPy can only run as many passes.
 *
 * Compiled on first use by nurinet/_runtime/native/__init__.py with the system C compiler and loaded
 * with ctypes (no Python C API: the calls release the GIL). Every kernel has a NumPy twin that
 * runs when this library is not available; the tests compare the two.
 *
 * Matrix products go to the BLAS that NumPy bundles (or MKL): the caller passes the address of its
 * cblas_sgemm and whether that build takes 64-bit integers. The LSTM kernels may instead run their
 * per-step products in the packed GEMM below, when the caller asks for it.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- BLAS ---- */

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
typedef void (*sgemm64_t)(int, int, int, int64_t, int64_t, int64_t, float, const float *, int64_t,
                          const float *, int64_t, float, float *, int64_t);
typedef void (*sgemm32_t)(int, int, int, int32_t, int32_t, int32_t, float, const float *, int32_t,
                          const float *, int32_t, float, float *, int32_t);

typedef struct {
    void *fn;
    int int64;
} blas_t;

/* C (m x n) = alpha op(A) op(B) + beta C, row-major, leading dimensions lda, ldb, ldc. */
static void sgemm(blas_t blas, int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                  const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    int opa = ta ? TRANS : NO_TRANS, opb = tb ? TRANS : NO_TRANS;
    if (blas.int64)
        ((sgemm64_t)blas.fn)(ROW_MAJOR, opa, opb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
    else
        ((sgemm32_t)blas.fn)(ROW_MAJOR, opa, opb, (int32_t)m, (int32_t)n, (int32_t)k, 1.0f, a, (int32_t)lda, b,
                             (int32_t)ldb, beta, c, (int32_t)ldc);
}

/* ---- a small GEMM with a packed constant operand ----
 *
 * The LSTM kernels multiply by the same hidden weight once per time step. OpenBLAS re-packs that
 * whole operand on every call; here it is packed once per sequence into column panels of NR
 * floats, each panel k rows deep and contiguous, so the inner loop streams it. The other operand
 * (the state of this step) is packed per call into row blocks of MR, interleaved by k, so that one
 * pointer feeds the broadcasts. Edge rows and columns are zero-padded in the packed copies and the
 * result tile is cut back to size when it is stored. Single-threaded: the LSTM splits its rows
 * over threads itself.
 *
 * The register tile is MR rows by NV vectors of VW floats (GCC vector extensions: the compiler
 * keeps the accumulators in registers and splits a vector it cannot hold in one register). */
#if defined(__AVX512F__)
#define GEMM_VW 16
#define GEMM_MR 8
#define GEMM_NV 2
/* Only this build was measured faster than OpenBLAS (the LSTM kernels ignore `packed` in the others;
 * small_sgemm runs the packed path everywhere, for the tests). */
#define GEMM_PACKED_WINS 1
#elif defined(__AVX__)
#define GEMM_VW 8
#define GEMM_MR 6
#define GEMM_NV 2
#else
#define GEMM_VW 4
#define GEMM_MR 4
#define GEMM_NV 2
#endif
#ifndef GEMM_PACKED_WINS
#define GEMM_PACKED_WINS 0
#endif
#define GEMM_NR (GEMM_NV * GEMM_VW)
/* Depth of one pass: a packed panel slice and the packed rows it meets stay in L1 together. */
#define GEMM_KC 256

typedef float gemm_vec __attribute__((vector_size(GEMM_VW * 4)));
typedef float gemm_vec_u __attribute__((vector_size(GEMM_VW * 4), aligned(4))); /* unaligned access */

typedef struct {
    float *buf;      /* one allocation: the packed constant operand, then room for the packed rows */
    float *bp, *ap;  /* NULL buf: not packed, the caller uses sgemm */
    int64_t m, n, k; /* the largest m the row buffer holds; n, k of the packed operand */
} packed_gemm_t;

static int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

/* Pack b (k x n, row-major, leading dimension ldb) for products with up to m rows; returns 0 when
 * the memory cannot be had (g->buf is then NULL). */
static int packed_init(packed_gemm_t *g, int64_t m, int64_t n, int64_t k, const float *b, int64_t ldb) {
    int64_t nb = round_up(n, GEMM_NR) * k, na = round_up(m, GEMM_MR) * k;
    size_t bytes = (size_t)(nb + na + 1) * sizeof(float);
    g->buf = NULL;
    if (posix_memalign((void **)&g->buf, 64, round_up((int64_t)bytes, 64)) != 0) {
        g->buf = NULL;
        return 0;
    }
    g->bp = g->buf, g->ap = g->buf + nb, g->m = m, g->n = n, g->k = k;
    for (int64_t j0 = 0; j0 < n; j0 += GEMM_NR) {
        float *panel = g->bp + j0 * k;
        int64_t w = n - j0 < GEMM_NR ? n - j0 : GEMM_NR;
        for (int64_t p = 0; p < k; p++) {
            const float *src = b + p * ldb + j0;
            float *dst = panel + p * GEMM_NR;
            int64_t j = 0;
            for (; j < w; j++) dst[j] = src[j];
            for (; j < GEMM_NR; j++) dst[j] = 0.0f;
        }
    }
    return 1;
}

static void packed_free(packed_gemm_t *g) {
    free(g->buf);
    g->buf = NULL;
}

/* The rows of a (m x k) into blocks of MR, each laid out k-major: block[p * MR + i] = a[i][p]. */
static void pack_rows(int64_t m, int64_t k, const float *a, int64_t lda, float *ap) {
    for (int64_t i0 = 0; i0 < m; i0 += GEMM_MR) {
        float *block = ap + i0 * k;
        int64_t h = m - i0 < GEMM_MR ? m - i0 : GEMM_MR;
        for (int64_t i = 0; i < h; i++) {
            const float *src = a + (i0 + i) * lda;
            for (int64_t p = 0; p < k; p++) block[p * GEMM_MR + i] = src[p];
        }
        for (int64_t i = h; i < GEMM_MR; i++)
            for (int64_t p = 0; p < k; p++) block[p * GEMM_MR + i] = 0.0f;
    }
}

/* One MR x NR tile over depth k: c (rows x cols of it) = acc, or acc + beta c; c is not read when
 * beta is 0 (it may hold anything, NaN included, as BLAS allows). */
static inline void gemm_tile(int64_t k, const float *restrict ap, const float *restrict bp, float *c, int64_t ldc,
                             float beta, int64_t rows, int64_t cols) {
    gemm_vec acc[GEMM_MR][GEMM_NV];
    for (int i = 0; i < GEMM_MR; i++)
        for (int v = 0; v < GEMM_NV; v++) acc[i][v] = (gemm_vec){0};
    for (int64_t p = 0; p < k; p++) {
        gemm_vec bv[GEMM_NV];
        for (int v = 0; v < GEMM_NV; v++) bv[v] = *(const gemm_vec *)(bp + p * GEMM_NR + v * GEMM_VW);
        for (int i = 0; i < GEMM_MR; i++) {
            float ai = ap[p * GEMM_MR + i];
            for (int v = 0; v < GEMM_NV; v++) acc[i][v] += ai * bv[v];
        }
    }
    if (rows == GEMM_MR && cols == GEMM_NR) {
        for (int i = 0; i < GEMM_MR; i++)
            for (int v = 0; v < GEMM_NV; v++) {
                gemm_vec_u *out = (gemm_vec_u *)(c + i * ldc + v * GEMM_VW);
                *out = beta == 0.0f ? acc[i][v] : acc[i][v] + beta * *out;
            }
        return;
    }
    float tile[GEMM_MR][GEMM_NR] __attribute__((aligned(64)));
    for (int i = 0; i < GEMM_MR; i++)
        for (int v = 0; v < GEMM_NV; v++) *(gemm_vec *)(tile[i] + v * GEMM_VW) = acc[i][v];
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
            float *out = c + i * ldc + j;
            *out = beta == 0.0f ? tile[i][j] : tile[i][j] + beta * *out;
        }
}

/* c (m x n) = a (m x k) @ b + beta c, with b the operand packed_init took (m no more than its m). */
static void packed_run(const packed_gemm_t *g, int64_t m, const float *a, int64_t lda, float beta, float *c,
                       int64_t ldc) {
    int64_t n = g->n, k = g->k;
    if (m <= 0 || n <= 0) return;
    pack_rows(m, k, a, lda, g->ap);
    for (int64_t p0 = 0; p0 < k || p0 == 0; p0 += GEMM_KC) {
        int64_t depth = k - p0 < GEMM_KC ? k - p0 : GEMM_KC;
        float pass_beta = p0 == 0 ? beta : 1.0f; /* later passes add to what the first wrote */
        for (int64_t j0 = 0; j0 < n; j0 += GEMM_NR) {
            const float *panel = g->bp + j0 * k + p0 * GEMM_NR;
            int64_t cols = n - j0 < GEMM_NR ? n - j0 : GEMM_NR;
            for (int64_t i0 = 0; i0 < m; i0 += GEMM_MR)
                gemm_tile(depth, g->ap + i0 * k + p0 * GEMM_MR, panel, c + i0 * ldc + j0, ldc, pass_beta,
                          m - i0 < GEMM_MR ? m - i0 : GEMM_MR, cols);
        }
        if (k == 0) break;
    }
}

/* One product of the recurrence: packed when g holds a packed operand, else the BLAS. */
static void step_gemm(blas_t blas, const packed_gemm_t *g, int64_t m, int64_t n, int64_t k, const float *a,
                      int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (g->buf)
        packed_run(g, m, a, lda, beta, c, ldc);
    else
        sgemm(blas, 0, 0, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

/* c (m x n) = a (m x k) @ b (k x n) + beta c through the packed path, packing b here: for the tests,
 * which compare it with NumPy (the LSTM kernels pack once per sequence). Row-major, leading
 * dimensions lda, ldb, ldc. Leaves c as it is when the memory cannot be had. */
void small_sgemm(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                 float beta, float *c, int64_t ldc) {
    packed_gemm_t g;
    if (!packed_init(&g, m, n, k, b, ldb)) return;
    packed_run(&g, m, a, lda, beta, c, ldc);
    packed_free(&g);
}

/* ---- elementwise functions the compiler can vectorize (no libm calls, no branches) ---- */

static inline float bits_to_float(int32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* exp(x) to about 2 ulp (Cephes' expf polynomial after a range reduction by ln 2). Inputs are
 * clamped to [-87, 88], where exp neither overflows nor leaves the normal range; NaN stays NaN. */
static inline float fast_exp(float x) {
    x = x > 88.0f ? 88.0f : x;
    x = x < -87.0f ? -87.0f : x;
    float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float safe_n = n == n ? n : 0.0f; /* a NaN input: keep the integer conversion defined */
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return p * bits_to_float(((int32_t)safe_n + 127) << 23);
}

static inline float fast_sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }

/* tanh(x): an odd polynomial below |x| = 0.625 (Cephes' tanhf), 1 - 2 / (exp(2|x|) + 1) above. */
static inline float fast_tanh(float x) {
    float ax = x < 0.0f ? -x : x;
    float z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                    1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    float big = 1.0f - 2.0f / (fast_exp(2.0f * ax) + 1.0f);
    big = x < 0.0f ? -big : big;
    return ax < 0.625f ? small : big;
}

/* The math functions on their own, over n floats (the tests check them against float64). */
void nn_exp(int64_t n, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = fast_exp(x[i]);
}

void nn_sigmoid(int64_t n, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = fast_sigmoid(x[i]);
}

void nn_tanh(int64_t n, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = fast_tanh(x[i]);
}

/* ---- LSTM recurrence ---- */

/* One row of one step. z (i, f, g, o blocks of H) holds the hidden product h @ W_hh^T; the input
 * projection x and the bias b are added to it, and it is overwritten with the activations; then
 * the cell update. The pointers never overlap (restrict lets the compiler vectorize the loop). */
static void lstm_cell_row(int64_t hidden, float *restrict zi, float *restrict zf, float *restrict zg,
                          float *restrict zo, const float *restrict xi, const float *restrict xf,
                          const float *restrict xg, const float *restrict xo, const float *restrict bi,
                          const float *restrict bf, const float *restrict bg, const float *restrict bo,
                          const float *restrict c_prev, float *restrict c_new, float *restrict tc,
                          float *restrict h_new) {
    for (int64_t j = 0; j < hidden; j++) {
        float i = fast_sigmoid(zi[j] + xi[j] + bi[j]), f = fast_sigmoid(zf[j] + xf[j] + bf[j]);
        float g = fast_tanh(zg[j] + xg[j] + bg[j]), o = fast_sigmoid(zo[j] + xo[j] + bo[j]);
        float c = f * c_prev[j] + i * g;
        float t = fast_tanh(c);
        zi[j] = i, zf[j] = f, zg[j] = g, zo[j] = o;
        c_new[j] = c, tc[j] = t, h_new[j] = o * t;
    }
}

/* One step for every row of the batch: z, x (rows, 4H), b (4H); see lstm_cell_row. */
static void lstm_cell(int64_t rows, int64_t hidden, float *z, const float *x, const float *b, const float *c_prev,
                      float *c_new, float *tc, float *h_new) {
    int64_t H = hidden;
    for (int64_t r = 0; r < rows; r++) {
        float *zr = z + 4 * r * H;
        const float *xr = x + 4 * r * H;
        int64_t k = r * H;
        lstm_cell_row(H, zr, zr + H, zr + 2 * H, zr + 3 * H, xr, xr + H, xr + 2 * H, xr + 3 * H, b, b + H, b + 2 * H,
                      b + 3 * H, c_prev + k, c_new + k, tc + k, h_new + k);
    }
}

/* One row of one backward step: the pre-activation gradients e (i, f, g, o blocks) from the
 * activations a, and dh, dc updated in place (dh gains the step's output gradient; dc becomes the
 * previous cell's gradient when keep_dc, else stays the gradient of this step's cell). */
static void lstm_cell_grad_row(int64_t hidden, const float *restrict ai, const float *restrict af,
                               const float *restrict ag, const float *restrict ao, const float *restrict c_prev,
                               const float *restrict tc, const float *restrict g_out, float *restrict ei,
                               float *restrict ef, float *restrict eg, float *restrict eo, float *restrict dh,
                               float *restrict dc, int keep_dc) {
    float carry = keep_dc ? 1.0f : 0.0f;
    for (int64_t j = 0; j < hidden; j++) {
        float i = ai[j], f = af[j], g = ag[j], o = ao[j], t = tc[j];
        float dhj = dh[j] + g_out[j];
        float dcj = dc[j] + dhj * o * (1.0f - t * t);
        ei[j] = dcj * g * i * (1.0f - i);
        ef[j] = dcj * c_prev[j] * f * (1.0f - f);
        eg[j] = dcj * i * (1.0f - g * g);
        eo[j] = dhj * t * o * (1.0f - o);
        dc[j] = dcj * (carry * f + (1.0f - carry));
    }
}

/* The forward recurrence over all steps, for the batch rows row0 <= r < row1 (rows are independent:
 * two threads can run two row ranges at once, each with its own one-thread matrix products).
 *   x (T, N, 4H): the input projections; b (4H): the hidden bias (zeros when the layer has none).
 *   gates (T, N, 4H): receives the activations i, f, g, o of every step.
 *   hs, cs (T+1, N, H): the states; the initial state is at index 0 (forward) or T (reverse).
 *   tcs (T, N, H): tanh of each new cell state.  wt (H, 4H): the hidden weight, transposed and
 *   contiguous (OpenBLAS runs h @ wt faster than h @ w^T with w as it is).
 * Step t reads state t (forward) or t+1 (reverse) and writes the other. packed: run the per-step
 * products in the packed GEMM above (the weight packed once here) instead of sgemm. */
void lstm_forward(int64_t steps, int64_t batch, int64_t hidden, int64_t row0, int64_t row1, const float *x,
                  const float *b, float *gates, float *hs, float *cs, float *tcs, const float *wt, int reverse,
                  void *sgemm_fn, int blas_int64, int packed) {
    blas_t blas = {sgemm_fn, blas_int64};
    int64_t state = batch * hidden, prev = reverse ? 1 : 0, next = reverse ? 0 : 1, rows = row1 - row0;
    int64_t h_off = row0 * hidden, z_off = row0 * 4 * hidden;
    packed_gemm_t g = {0};
    if (packed && GEMM_PACKED_WINS && rows > 0) packed_init(&g, rows, 4 * hidden, hidden, wt, 4 * hidden); /* else (or no memory): sgemm */
    for (int64_t s = 0; s < steps; s++) {
        int64_t t = reverse ? steps - 1 - s : s;
        int64_t z_at = t * batch * 4 * hidden + z_off;
        step_gemm(blas, &g, rows, 4 * hidden, hidden, hs + (t + prev) * state + h_off, hidden, wt, 4 * hidden, 0.0f,
                  gates + z_at, 4 * hidden);
        lstm_cell(rows, hidden, gates + z_at, x + z_at, b, cs + (t + prev) * state + h_off,
                  cs + (t + next) * state + h_off, tcs + t * state + h_off, hs + (t + next) * state + h_off);
    }
    packed_free(&g);
}

static void add_row(int64_t n, const float *restrict x, float *restrict acc) {
    for (int64_t j = 0; j < n; j++) acc[j] += x[j];
}

/* The backward recurrence, last step first, for the batch rows row0 <= r < row1.
 *   acts (T, N, 4H): the saved activations; d (T, N, 4H): receives the pre-activation gradients.
 *   g_out (T, N, H): the gradient of every step's output; dh, dc (N, H): the gradient of the final
 *   state on entry, of the initial state on return (when need_dh0 / need_dc0).
 *   w (4H, H): the hidden weight; gb (4H, or NULL): receives the sum of the rows of d (the bias
 *   gradient of these rows), added to what it holds. packed: as in lstm_forward. */
void lstm_backward(int64_t steps, int64_t batch, int64_t hidden, int64_t row0, int64_t row1, const float *acts,
                   const float *cs, const float *tcs, const float *g_out, float *d, float *dh, float *dc,
                   const float *w, float *gb, int reverse, int need_dh0, int need_dc0, void *sgemm_fn,
                   int blas_int64, int packed) {
    blas_t blas = {sgemm_fn, blas_int64};
    int64_t state = batch * hidden, prev = reverse ? 1 : 0, h_off = row0 * hidden, z_off = row0 * 4 * hidden;
    int64_t rows = row1 - row0;
    packed_gemm_t g = {0};
    if (packed && GEMM_PACKED_WINS && rows > 0) packed_init(&g, rows, hidden, 4 * hidden, w, hidden); /* else (or no memory): sgemm */
    dh += h_off, dc += h_off;
    for (int64_t s = steps - 1; s >= 0; s--) {
        int64_t t = reverse ? steps - 1 - s : s;
        int first = s == 0;
        const float *a = acts + t * batch * 4 * hidden + z_off, *cp = cs + (t + prev) * state + h_off;
        const float *tc = tcs + t * state + h_off, *go = g_out + t * state + h_off;
        float *e = d + t * batch * 4 * hidden + z_off;
        int keep_dc = !first || need_dc0;
        for (int64_t r = 0; r < rows; r++) {
            const float *ar = a + r * 4 * hidden;
            float *er = e + r * 4 * hidden;
            int64_t k = r * hidden;
            lstm_cell_grad_row(hidden, ar, ar + hidden, ar + 2 * hidden, ar + 3 * hidden, cp + k, tc + k, go + k, er,
                               er + hidden, er + 2 * hidden, er + 3 * hidden, dh + k, dc + k, keep_dc);
            if (gb) add_row(4 * hidden, er, gb); /* the bias gradient, while the row is in cache */
        }
        if (!first || need_dh0)
            step_gemm(blas, &g, rows, hidden, 4 * hidden, e, 4 * hidden, w, hidden, 0.0f, dh, hidden);
    }
    packed_free(&g);
}

/* ---- optimizers ---- */

/* One Adam step in one pass over memory (NumPy needs about eight), as nurinet.optim.Adam writes it:
 *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;  v_max = max(v_max, v) (AMSGrad:
 *   v_max non-NULL, used in place of v);  p -= step_size m / (sqrt(v) / sqrt_correction2 + eps). */
void adam_update(int64_t n, float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                 float *restrict v_max, float beta1, float beta2, float sqrt_correction2, float eps,
                 float step_size) {
    float w1 = 1.0f - beta1, w2 = 1.0f - beta2;
    if (v_max) {
        for (int64_t i = 0; i < n; i++) {
            float gi = g[i], mi = w1 * gi + beta1 * m[i], vi = beta2 * v[i] + w2 * (gi * gi);
            float top = v_max[i] > vi ? v_max[i] : vi;
            m[i] = mi, v[i] = vi, v_max[i] = top;
            p[i] -= step_size * (mi / (__builtin_sqrtf(top) / sqrt_correction2 + eps));
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i], mi = w1 * gi + beta1 * m[i], vi = beta2 * v[i] + w2 * (gi * gi);
        m[i] = mi, v[i] = vi;
        p[i] -= step_size * (mi / (__builtin_sqrtf(vi) / sqrt_correction2 + eps));
    }
}

/* One step of SGD with momentum in one pass (PyTorch's rule, after the first step, which makes
 * buf = g): buf = momentum * buf + (1 - dampening) * g; p -= lr * (nesterov ? g + momentum * buf : buf).
 * Two BLAS calls (axpby, axpy) read buf twice and p, g once each; this reads each array once. */
void sgd_momentum_update(int64_t n, float *restrict p, const float *restrict g, float *restrict buf, float lr,
                         float momentum, float dampening, int nesterov) {
    float w = 1.0f - dampening;
    if (nesterov) {
        for (int64_t i = 0; i < n; i++) {
            float bi = momentum * buf[i] + w * g[i];
            buf[i] = bi;
            p[i] -= lr * (g[i] + momentum * bi);
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float bi = momentum * buf[i] + w * g[i];
        buf[i] = bi;
        p[i] -= lr * bi;
    }
}

/* ---- pooling ---- */

/* One output row of disjoint kh x kw windows whose top-left corners are base + oj * kw (rows w
 * apart): each window's maximum into o, the row-major offset of its first maximum into a. A NaN
 * is its window's maximum (the first NaN), as in PyTorch. Branch-free, so that with constant
 * kh and kw (inlined below for 2 x 2) the compiler vectorizes the loop over oj. */
static inline void max_window_row(int64_t wo, int64_t w, int64_t kh, int64_t kw, const float *restrict base,
                                  float *restrict o, uint8_t *restrict a) {
    for (int64_t oj = 0; oj < wo; oj++) {
        const float *s = base + oj * kw;
        float best = s[0];
        int k = 0;
        for (int64_t i = 0; i < kh; i++) {
            for (int64_t j = 0; j < kw; j++) {
                float v = s[i * w + j];
                int take = v > best || (v != v && best == best);
                best = take ? v : best;
                k = take ? (int)(i * kw + j) : k;
            }
        }
        o[oj] = best;
        a[oj] = (uint8_t)k;
    }
}

/* max_window_row for 2 x 2 windows. Rows of pooled feature maps are short (12 outputs for a 24-wide
 * map), too short for the compiler's vector loop, and the scalar code is a chain of dependent
 * selects; so each stretch of at most CHUNK outputs is copied into local buffers and run by a
 * loop of constant length CHUNK, which the compiler turns into straight vector code.
 * TAKE keeps the first maximum (a later element must be larger) and lets a NaN in (the first NaN
 * stays). */
enum { CHUNK = 16 };
#define TAKE(value, offset)                                                   \
    do {                                                                      \
        float v_ = (value);                                                   \
        int take_ = v_ > best || (v_ != v_ && best == best);                  \
        best = take_ ? v_ : best;                                             \
        k = take_ ? (offset) : k;                                             \
    } while (0)

static void max_window_row_2x2(int64_t wo, const float *r0, const float *r1, float *o, uint8_t *a) {
    float top[2 * CHUNK], bottom[2 * CHUNK], best_of[CHUNK];
    int32_t k_of[CHUNK];
    for (int64_t s = 0; s < wo; s += CHUNK) {
        int64_t n = wo - s < CHUNK ? wo - s : CHUNK;
        memcpy(top, r0 + 2 * s, (size_t)(2 * n) * sizeof(float));
        memcpy(bottom, r1 + 2 * s, (size_t)(2 * n) * sizeof(float));
        for (int64_t j = 2 * n; j < 2 * CHUNK; j++) top[j] = bottom[j] = 0.0f;
        for (int j = 0; j < CHUNK; j++) {
            float best = top[2 * j];
            int32_t k = 0;
            TAKE(top[2 * j + 1], 1);
            TAKE(bottom[2 * j], 2);
            TAKE(bottom[2 * j + 1], 3);
            best_of[j] = best;
            k_of[j] = k;
        }
        memcpy(o + s, best_of, (size_t)n * sizeof(float));
        for (int64_t j = 0; j < n; j++) a[s + j] = (uint8_t)k_of[j];
    }
}

/* Max pooling over disjoint windows (stride = kernel, no padding, floor mode) of `planes` planes of
 * h x w: out (planes, h/kh, w/kw) gets each window's maximum, arg the offset of its first maximum. */
void maxpool2d_blocks_forward(int64_t planes, int64_t h, int64_t w, int64_t kh, int64_t kw, const float *x,
                              float *out, uint8_t *arg) {
    int64_t ho = h / kh, wo = w / kw;
    for (int64_t p = 0; p < planes; p++) {
        for (int64_t oi = 0; oi < ho; oi++) {
            const float *base = x + p * h * w + oi * kh * w;
            int64_t at = (p * ho + oi) * wo;
            if (kh == 2 && kw == 2)
                max_window_row_2x2(wo, base, base + w, out + at, arg + at);
            else
                max_window_row(wo, w, kh, kw, base, out + at, arg + at);
        }
    }
}

/* The gradient of maxpool2d_blocks_forward: gx (planes, h, w) gets gy at each window's first maximum
 * and zero everywhere else (including the rows and columns no window covers). The plane is zeroed
 * in one go and each gradient stored at its maximum's place: one store per window, no test. */
void maxpool2d_blocks_backward(int64_t planes, int64_t h, int64_t w, int64_t kh, int64_t kw, const float *gy,
                               const uint8_t *arg, float *gx) {
    int64_t ho = h / kh, wo = w / kw, place[256];
    for (int64_t k = 0; k < kh * kw && k < 256; k++) place[k] = (k / kw) * w + k % kw;
    memset(gx, 0, (size_t)(planes * h * w) * sizeof(float));
    for (int64_t p = 0; p < planes; p++) {
        float *plane = gx + p * h * w;
        for (int64_t oi = 0; oi < ho; oi++) {
            const float *g = gy + (p * ho + oi) * wo;
            const uint8_t *a = arg + (p * ho + oi) * wo;
            float *corner = plane + oi * kh * w;
            for (int64_t oj = 0; oj < wo; oj++) corner[oj * kw + place[a[oj]]] = g[oj];
        }
    }
}

/* ---- convolution ---- */

/* col2im of the wide stride-1 layout (nurinet/_runtime/fast/conv_wide.py): out (nb, c, plane) is zeroed,
 * then each tap k of cols (c, taps, nb, length) is added at offset starts[k] of its plane. One
 * plane at a time, so the plane stays in cache while its taps are added. */
void col2im_wide(int64_t c, int64_t taps, int64_t nb, int64_t length, int64_t plane, const int64_t *starts,
                 const float *cols, float *out) {
    for (int64_t n = 0; n < nb; n++) {
        for (int64_t ci = 0; ci < c; ci++) {
            float *restrict o = out + (n * c + ci) * plane;
            memset(o, 0, (size_t)plane * sizeof(float));
            for (int64_t k = 0; k < taps; k++) {
                const float *restrict src = cols + ((ci * taps + k) * nb + n) * length;
                float *restrict dst = o + starts[k];
                for (int64_t t = 0; t < length; t++) dst[t] += src[t];
            }
        }
    }
}

/* Direct stride-1 convolution for layers with few input taps (c * kh * kw small, such as a first
 * layer on 1- or 3-channel images), where a matrix product with an inner dimension of 9 or 27 runs
 * far below the BLAS's speed and the column matrix is mostly copying. On the wide grid (see
 * _runtime/fast/conv_wide.py): output position t of a plane (t < length) reads input position t + starts[k] at
 * tap k, so each (output channel, input channel, tap) is one long multiply-add over the plane.
 *   xpad (nb, c, plane): the padded input; w (o, c * taps); b (o) or NULL; y (nb, o, ho, wo). */
void conv2d_direct_forward(int64_t nb, int64_t c, int64_t o, int64_t plane, int64_t wp, int64_t ho, int64_t wo,
                           int64_t taps, const int64_t *starts, const float *xpad, const float *w, const float *b,
                           float *y, float *scratch) {
    int64_t length = (ho - 1) * wp + wo;
    float *restrict acc = scratch; /* length floats */
    for (int64_t n = 0; n < nb; n++) {
        for (int64_t oc = 0; oc < o; oc++) {
            float bias = b ? b[oc] : 0.0f;
            for (int64_t t = 0; t < length; t++) acc[t] = bias;
            for (int64_t ci = 0; ci < c; ci++) {
                const float *in = xpad + (n * c + ci) * plane;
                for (int64_t k = 0; k < taps; k++) {
                    float wk = w[(oc * c + ci) * taps + k];
                    const float *restrict src = in + starts[k];
                    for (int64_t t = 0; t < length; t++) acc[t] += wk * src[t];
                }
            }
            float *out = y + (n * o + oc) * ho * wo;
            for (int64_t r = 0; r < ho; r++) memcpy(out + r * wo, acc + r * wp, (size_t)wo * sizeof(float));
        }
    }
}

/* sum_t a[t] b[t] in 16 independent lanes (the compiler vectorizes them without reordering a sum). */
static float dot16(const float *restrict a, const float *restrict b, int64_t n) {
    float lane[16] = {0};
    int64_t t = 0;
    for (; t + 16 <= n; t += 16)
        for (int l = 0; l < 16; l++) lane[l] += a[t + l] * b[t + l];
    float s = 0.0f;
    for (; t < n; t++) s += a[t] * b[t];
    for (int l = 0; l < 16; l++) s += lane[l];
    return s;
}

/* sum_t a[t], in 16 lanes as dot16. */
static float sum16(const float *restrict a, int64_t n) {
    float lane[16] = {0};
    int64_t t = 0;
    for (; t + 16 <= n; t += 16)
        for (int l = 0; l < 16; l++) lane[l] += a[t + l];
    float s = 0.0f;
    for (; t < n; t++) s += a[t];
    for (int l = 0; l < 16; l++) s += lane[l];
    return s;
}

/* The weight and bias gradients of conv2d_direct_forward, added into gw (o, c * taps) and gb (o, or
 * NULL): per sample and output channel, the output gradient is laid on the wide grid (zero in the
 * junk columns) and dotted with each tap's stretch of the input. */
void conv2d_direct_weight_grad(int64_t nb, int64_t c, int64_t o, int64_t plane, int64_t wp, int64_t ho,
                               int64_t wo, int64_t taps, const int64_t *starts, const float *xpad, const float *gy,
                               float *gw, float *gb, float *scratch) {
    int64_t length = (ho - 1) * wp + wo;
    float *restrict g = scratch; /* length floats */
    for (int64_t n = 0; n < nb; n++) {
        for (int64_t oc = 0; oc < o; oc++) {
            const float *src = gy + (n * o + oc) * ho * wo;
            for (int64_t r = 0; r < ho; r++) {
                memcpy(g + r * wp, src + r * wo, (size_t)wo * sizeof(float));
                if (r < ho - 1)
                    for (int64_t t = wo; t < wp; t++) g[r * wp + t] = 0.0f;
            }
            if (gb) gb[oc] += sum16(g, length); /* the junk columns are zero */
            for (int64_t ci = 0; ci < c; ci++) {
                const float *in = xpad + (n * c + ci) * plane;
                for (int64_t k = 0; k < taps; k++) gw[(oc * c + ci) * taps + k] += dot16(g, in + starts[k], length);
            }
        }
    }
}

/* ---- activations ---- */

/* y = max(x, 0), with a NaN kept (x < 0 is false for it). */
void relu_forward(int64_t n, const float *restrict x, float *restrict y) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

/* gx = gy * (x > 0), in one pass (NumPy needs a boolean temporary and a mixed-type product). The
 * product, not a select, as in the NumPy path: a NaN gradient stays NaN where x <= 0. */
void relu_backward(int64_t n, const float *restrict gy, const float *restrict x, float *restrict gx) {
    for (int64_t i = 0; i < n; i++) gx[i] = gy[i] * (x[i] > 0.0f ? 1.0f : 0.0f);
}

/* relu_backward on `rows` rows of `cols`, also summing each column of the result into sums (the bias
 * gradient of the linear layer before the ReLU), in the same pass. The sums grow in the caller's
 * double scratch `total` (cols of them), so that a tall array loses no more than the BLAS's sums. */
void relu_backward_column_sums(int64_t rows, int64_t cols, const float *restrict gy, const float *restrict x,
                               float *restrict gx, double *restrict total, float *restrict sums) {
    for (int64_t c = 0; c < cols; c++) total[c] = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        float *restrict out = gx + r * cols;
        relu_backward(cols, gy + r * cols, x + r * cols, out);
        for (int64_t c = 0; c < cols; c++) total[c] += out[c];
    }
    for (int64_t c = 0; c < cols; c++) sums[c] = (float)total[c];
}

/* The wide product y2 (o, nb * length) of a chunk to its outputs y (nb, o, ho, wo), adding the bias
 * b (o, or NULL): row r of output (n, oc) is y2[oc, n * length + r * wp ...] (see _runtime/fast/conv_wide.py). */
void wide_to_nchw(int64_t nb, int64_t o, int64_t ho, int64_t wo, int64_t wp, int64_t length, const float *y2,
                  const float *b, float *y) {
    for (int64_t n = 0; n < nb; n++) {
        for (int64_t oc = 0; oc < o; oc++) {
            float bias = b ? b[oc] : 0.0f;
            const float *src = y2 + oc * nb * length + n * length;
            float *dst = y + (n * o + oc) * ho * wo;
            for (int64_t r = 0; r < ho; r++) {
                const float *restrict s = src + r * wp;
                float *restrict d = dst + r * wo;
                for (int64_t col = 0; col < wo; col++) d[col] = s[col] + bias;
            }
        }
    }
}

/* The inverse layout for the backward: gy (nb, o, ho, wo) to wide rows g2 (o, nb * length), zero in
 * the junk columns, and the bias gradient's partial sums added into gb (o). */
void nchw_to_wide(int64_t nb, int64_t o, int64_t ho, int64_t wo, int64_t wp, int64_t length, const float *gy,
                  float *g2, float *gb) {
    for (int64_t oc = 0; oc < o; oc++) {
        float total = 0.0f;
        for (int64_t n = 0; n < nb; n++) {
            const float *src = gy + (n * o + oc) * ho * wo;
            float *dst = g2 + oc * nb * length + n * length;
            for (int64_t r = 0; r < ho; r++) {
                const float *restrict s = src + r * wo;
                float *restrict d = dst + r * wp;
                float row = 0.0f;
                for (int64_t col = 0; col < wo; col++) {
                    d[col] = s[col];
                    row += s[col];
                }
                if (r < ho - 1)
                    for (int64_t col = wo; col < wp; col++) d[col] = 0.0f;
                total += row;
            }
        }
        gb[oc] += total;
    }
}

/* ---- layer normalization over the last axis ---- */

/* sum_t a[t] in 8 double lanes: a row's mean exact enough that centering by it leaves no offset
 * (float lanes lose the low digits of rows with a large common offset). */
static double sum_double8(const float *restrict a, int64_t n) {
    double lane[8] = {0};
    int64_t t = 0;
    for (; t + 8 <= n; t += 8)
        for (int l = 0; l < 8; l++) lane[l] += (double)a[t + l];
    double s = 0.0;
    for (; t < n; t++) s += (double)a[t];
    for (int l = 0; l < 8; l++) s += lane[l];
    return s;
}

/* Layer normalization of `rows` rows of n floats, the statistics of each row over that row:
 *   mean[r], var[r] (biased), rstd[r] = 1 / sqrt(var + eps);  xhat = (x - mean) * rstd;
 *   y = xhat * w + b when w is not NULL (w, b: n floats; y is not written otherwise).
 * Two passes for the statistics (the variance of the centered values, never E[x^2] - E[x]^2, which
 * cancels for rows with a large offset). The squares are float, as in the NumPy path, so a row whose
 * squares overflow (or that holds inf or NaN) gets a non-finite var: the caller then runs its own
 * code for the whole call, and what this wrote into xhat and y for that row is meaningless. */
void layer_norm_forward(int64_t rows, int64_t n, const float *x, const float *w, const float *b, float eps,
                        float *xhat, float *y, float *mean, float *var, float *rstd) {
    for (int64_t r = 0; r < rows; r++) {
        const float *restrict xr = x + r * n;
        float *restrict hr = xhat + r * n;
        double mu = sum_double8(xr, n) / (double)n;
        for (int64_t j = 0; j < n; j++) hr[j] = (float)((double)xr[j] - mu);
        float v = dot16(hr, hr, n) / (float)n;
        float s = 1.0f / sqrtf(v + eps);
        mean[r] = (float)mu, var[r] = v, rstd[r] = s;
        for (int64_t j = 0; j < n; j++) hr[j] *= s;
        if (w) {
            float *restrict yr = y + r * n;
            for (int64_t j = 0; j < n; j++) yr[j] = hr[j] * w[j] + b[j];
        }
    }
}

/* The gradients of layer_norm_forward, for the gradient gy of its output (rows of n floats):
 *   gx = (g - mean(g) - xhat * mean(g * xhat)) * rstd with g = gy * w (g = gy when w is NULL),
 *   written when gx is not NULL;  gw += sum over rows of gy * xhat, gb += sum over rows of gy,
 *   each when not NULL (n floats, added to what they hold). scratch: n floats. */
void layer_norm_backward(int64_t rows, int64_t n, const float *gy, const float *xhat, const float *rstd,
                         const float *w, float *gx, float *gw, float *gb, float *scratch) {
    float *restrict g = scratch;
    for (int64_t r = 0; r < rows; r++) {
        const float *restrict gr = gy + r * n, *restrict hr = xhat + r * n;
        if (gx) {
            if (w)
                for (int64_t j = 0; j < n; j++) g[j] = gr[j] * w[j];
            else
                memcpy(g, gr, (size_t)n * sizeof(float));
            float mg = sum16(g, n) / (float)n, mgh = dot16(g, hr, n) / (float)n, s = rstd[r];
            float *restrict out = gx + r * n;
            for (int64_t j = 0; j < n; j++) out[j] = (g[j] - mg - hr[j] * mgh) * s;
        }
        if (gw)
            for (int64_t j = 0; j < n; j++) gw[j] += gr[j] * hr[j];
        if (gb)
            for (int64_t j = 0; j < n; j++) gb[j] += gr[j];
    }
}

/* ---- row softmax (attention weights) ---- */

/* A float's bits as an integer that orders as the float does (-inf lowest, +inf highest; a NaN lands
 * beyond one of the two ends, by its sign bit). The map is its own inverse. */
static inline int32_t ordered_bits(int32_t bits) { return bits ^ ((bits >> 31) & 0x7fffffff); }

/* max_t a[t], as an integer maximum of ordered_bits (a float maximum that may meet a NaN is not
 * vectorized without -ffast-math). A NaN element may or may not come out: either way exp makes
 * its row NaN. */
static float max_of(const float *restrict a, int64_t n) {
    int32_t best = ordered_bits((int32_t)0xff800000u); /* -inf */
    for (int64_t t = 0; t < n; t++) {
        int32_t bits;
        memcpy(&bits, a + t, sizeof bits);
        int32_t key = ordered_bits(bits);
        best = key > best ? key : best;
    }
    return bits_to_float(ordered_bits(best));
}

/* exp(x) for the shifted scores x <= 0: fast_exp, which the compiler vectorizes (libm's expf is one
 * call per element, slower than NumPy's vector exp), and exactly 0 below -87, where fast_exp clamps,
 * so that a masked (-inf) score gets a weight of 0 (true exp is below 1.2e-38 there). NaN stays NaN. */
static inline float exp_nonpositive(float x) {
    float e = fast_exp(x);
    return x < -87.0f ? 0.0f : e;
}

static int all_neg_inf(const float *a, int64_t n) {
    for (int64_t t = 0; t < n; t++)
        if (!(a[t] == -INFINITY)) return 0;
    return 1;
}

/* p = exp(x - m) / sum(exp(x - m)) over a row of n (p may be x); returns the sum. */
static float softmax_row(int64_t n, const float *x, float m, float *p) {
    for (int64_t t = 0; t < n; t++) p[t] = exp_nonpositive(x[t] - m);
    float s = sum16(p, n), inv = 1.0f / s;
    for (int64_t t = 0; t < n; t++) p[t] *= inv;
    return s;
}

/* Softmax of each of `rows` rows of n floats, in place: s = exp(s - max) / sum(exp(s - max)).
 * A row that is entirely -inf (a query every key of which is masked) becomes zeros and gets
 * dead[r] = 1 (else 0). A row holding NaN becomes NaN, as in NumPy (its max is NaN). */
void softmax_rows_forward(int64_t rows, int64_t n, float *s, uint8_t *dead) {
    for (int64_t r = 0; r < rows; r++) {
        float *restrict sr = s + r * n;
        float m = max_of(sr, n);
        dead[r] = 0;
        if (m == -INFINITY) { /* all -inf, or -inf and a NaN that max_of passed over */
            if (all_neg_inf(sr, n)) {
                memset(sr, 0, (size_t)n * sizeof(float));
                dead[r] = 1;
                continue;
            }
            m = NAN;
        }
        softmax_row(n, sr, m, sr);
    }
}

/* Softmax cross-entropy of `rows` rows of n logits x, each with one class index: into *loss the sum
 * over rows of log(sum(exp(x - max))) - (x[t] - max) (in double), and into p the probabilities
 * softmax(x) for the backward. *bad is the number of targets outside [0, n); when it is not 0 nothing
 * else is written (the caller takes its general path). A row holding NaN gives NaN, as in NumPy. */
void softmax_xent_forward(int64_t rows, int64_t n, const float *x, const int64_t *target, float *p,
                          double *loss, int64_t *bad) {
    int64_t wrong = 0;
    for (int64_t r = 0; r < rows; r++) wrong += target[r] < 0 || target[r] >= n;
    *bad = wrong;
    if (wrong) return;
    double total = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        const float *restrict xr = x + r * n;
        float *restrict pr = p + r * n;
        float m = max_of(xr, n), s = softmax_row(n, xr, m, pr);
        total += (double)logf(s) - (double)(xr[target[r]] - m);
    }
    *loss = total;
}

/* Its gradient for an output gradient g: out = p * g, less g at each row's target. */
void softmax_xent_backward(int64_t rows, int64_t n, const float *p, const int64_t *target, float g, float *out) {
    for (int64_t r = 0; r < rows; r++) {
        const float *restrict pr = p + r * n;
        float *restrict orow = out + r * n;
        for (int64_t t = 0; t < n; t++) orow[t] = pr[t] * g;
        orow[target[r]] -= g;
    }
}

/* The softmax gradient, in place on gp (rows of n floats) given the weights p:
 * gp = (gp - sum(gp * p)) * p, per row. */
void softmax_rows_backward(int64_t rows, int64_t n, const float *p, float *gp) {
    for (int64_t r = 0; r < rows; r++) {
        const float *restrict pr = p + r * n;
        float *restrict gr = gp + r * n;
        float d = dot16(gr, pr, n);
        for (int64_t t = 0; t < n; t++) gr[t] = (gr[t] - d) * pr[t];
    }
}
