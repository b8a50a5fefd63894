/* nurinet's own single-precision matrix product (SGEMM) for CPUs with AVX-512.
 *
 * Why it exists: NumPy's wheels bring OpenBLAS, whose SGEMM runs at about three quarters of the
 * speed of MKL's on the AVX-512 machines we measured (docs/performance.md, "The matrix products"),
 * and MKL is too big to be a required dependency. This file is the textbook blocked GEMM (Goto's
 * and BLIS's loop nest) with a register tile chosen for those machines:
 *
 *   for each column block of NC (per thread):        packed B block in L2
 *     for each depth slice of KC:    pack B[slice, block] into slivers of NR columns
 *       for each MR rows of A:       the rows' KC values stay in L1 while...
 *         for each sliver:           ...the MR x NR tile of C is computed in 24 vector registers
 *
 * A is not packed: the tile broadcasts its values straight from A (row-major or transposed), which
 * saves a pass over A that the moderate row counts of training (64 to a few thousand) cannot
 * amortise. B is packed, zero-padded to whole slivers (a plain copy when it is stored row-major,
 * 16 x 16 register transposes when it is stored transposed); the last sliver's store is masked.
 *
 * Threads: the C of one product is cut into disjoint parts, by column slivers when there are
 * enough of them, else by row tiles; each part packs the B it needs itself, so the threads never
 * wait on each other until the end. Each element of C is summed in the same order whatever the
 * number of threads, so the result does not depend on it. The pool is one job at a time: a second
 * caller (another Python thread) runs its product on its own thread.
 *
 * Only C = op(A) op(B) (+ a bias row; alpha 1, beta 0): C is written, never read first (but for
 * nn_sgemm_gathered asked to add to C). On builds without
 * AVX-512, nn_gemm_supported() returns 0 and nurinet keeps NumPy's product. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int nn_gemm_supported(void);
void nn_gemm_set_spin(int64_t ticks);
void nn_gemm_park(void);
void nn_sgd_momentum_update(int64_t n, float *p, const float *g, float *buf, float lr, float momentum,
                            float dampening, int nesterov, int threads);
void nn_adam_update(int64_t n, float *p, const float *g, float *m, float *v, float *v_max, float beta1, float beta2,
                    float sqrt_correction2, float eps, float step_size, int threads);
void nn_sgemm_gathered(int64_t m, int64_t n, int64_t k, int trans_a, const float *a, int64_t lda, int64_t a_stride,
                       int trans_b, const float *b, const int64_t *b_offsets, int64_t b_stride, float *c,
                       int64_t ldc, int64_t c_stride, int64_t samples, int sum_samples, int threads);
void nn_sgemm(int64_t m, int64_t n, int64_t k, int trans_a, const float *a, int64_t lda, int trans_b,
              const float *b, int64_t ldb, const float *bias, int relu, float *c, int64_t ldc, int threads);
/* The optimizer updates in kernels.c, run on slices by nn_sgd_momentum_update and nn_adam_update. */
void sgd_momentum_update(int64_t n, float *restrict p, const float *restrict g, float *restrict buf, float lr,
                         float momentum, float dampening, int nesterov); /* kernels.c */
void adam_update(int64_t n, float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                 float *restrict v_max, float beta1, float beta2, float sqrt_correction2, float eps,
                 float step_size); /* kernels.c */

#if defined(__AVX512F__) && defined(__linux__)
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <x86intrin.h>

#define G_MR 12   /* rows of the register tile: 12 x 2 accumulators + 2 of B + 1 broadcast of 32 */
#define G_NR 32   /* columns of the register tile: two 16-float vectors */
#define G_KC 256  /* the deepest pass: the tile's rows of A (12 KiB) stay in L1 */
#define G_NC 1024 /* columns packed at once: a 1 MiB block of B stays in L2 */
#define G_MAX_THREADS 64
/* How long an idle worker spins before it sleeps, in TSC ticks (nn_gemm_set_spin; nurinet sets
 * settings.NATIVE_GEMM_SPIN_LOG2): long enough to span the gap between two products of a training
 * step, short enough not to take a core from other threads for long (docs/performance.md). */
static atomic_uint_fast64_t spin_ticks = 1ULL << 20;
/* Set by nn_gemm_park (nurinet calls it before it hands elementwise work to its own Python threads,
 * which need the cores): idle workers stop spinning and sleep now. Cleared when the pool next posts
 * a task to its workers. */
static atomic_int parked;

/* Work the pool runs: `parts` independent parts, part i done by run(task, i). A product's job and the
 * SGD update below each start with one. */
typedef struct task {
    void (*run)(const struct task *task, int part);
    int parts;
} task_t;

typedef struct {
    task_t task;
    int64_t m, n, k, lda, ldb, ldc;
    int trans_a, trans_b;
    const float *a, *b, *bias; /* bias: NULL, or n floats added to every row of C */
    const int64_t *b_offsets;  /* NULL, or where each stored row of B starts, from b */
    int add_to_c;              /* C += op(A) op(B) rather than C = */
    int relu;                  /* C = max(op(A) op(B) + bias, 0): a linear layer followed by ReLU */
    float *c;
    int by_columns; /* the C is cut into task.parts blocks of column slivers or of row tiles */
} job_t;

int nn_gemm_supported(void) { return 1; }

void nn_gemm_set_spin(int64_t ticks) { atomic_store(&spin_ticks, ticks < 0 ? 0 : (uint64_t)ticks); }

void nn_gemm_park(void) { atomic_store_explicit(&parked, 1, memory_order_relaxed); }

static int64_t min64(int64_t x, int64_t y) { return x < y ? x : y; }

/* The mask of the first w lanes of a 16-float vector (none for w <= 0, all for w >= 16). */
static inline __mmask16 lanes(int64_t w) { return w >= 16 ? 0xFFFF : w <= 0 ? 0 : (__mmask16)((1u << w) - 1); }

/* ---- the register tile ---- */

/* c[0:mr, 0:cols] (+)= op(A)[0:mr, 0:kc] @ packed sliver (kc x NR). With a_t (A transposed), element
 * (i, p) of op(A) is a[p * lda + i], else a[i * lda + p]. `mr` and `a_t` are constants in every
 * caller (see tile_any), so the compiler unrolls the rows and keeps the accumulators in registers. */
static inline __attribute__((always_inline)) void tile(const int mr, const int a_t, int64_t kc, const float *a,
                                                       int64_t lda, const float *bp, float *c, int64_t ldc,
                                                       int64_t cols, int accumulate, const float *bias,
                                                       int rectify) {
    __m512 acc[G_MR][2];
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        __m512 b0 = _mm512_load_ps(bp + p * G_NR), b1 = _mm512_load_ps(bp + p * G_NR + 16);
#pragma GCC unroll 12
        for (int i = 0; i < mr; i++) {
            __m512 ai = _mm512_set1_ps(a_t ? a[p * lda + i] : a[i * lda + p]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
    }
    __mmask16 m0 = lanes(cols), m1 = lanes(cols - 16);
    __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();
    if (bias && !accumulate) bias0 = _mm512_maskz_loadu_ps(m0, bias), bias1 = _mm512_maskz_loadu_ps(m1, bias + 16);
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++) {
        float *row = c + i * ldc;
        if (bias && !accumulate) {
            acc[i][0] = _mm512_add_ps(acc[i][0], bias0);
            acc[i][1] = _mm512_add_ps(acc[i][1], bias1);
        } else if (accumulate) {
            acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_maskz_loadu_ps(m0, row));
            acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_maskz_loadu_ps(m1, row + 16));
        }
        if (rectify) { /* max(0, acc) returns acc when it is NaN, so a NaN stays NaN as in relu */
            acc[i][0] = _mm512_max_ps(_mm512_setzero_ps(), acc[i][0]);
            acc[i][1] = _mm512_max_ps(_mm512_setzero_ps(), acc[i][1]);
        }
        _mm512_mask_storeu_ps(row, m0, acc[i][0]);
        _mm512_mask_storeu_ps(row + 16, m1, acc[i][1]);
    }
}

#define TILE_CASE(R)                                                   \
    case R:                                                            \
        if (a_t)                                                       \
            tile(R, 1, kc, a, lda, bp, c, ldc, cols, accumulate, bias, rectify); \
        else                                                           \
            tile(R, 0, kc, a, lda, bp, c, ldc, cols, accumulate, bias, rectify); \
        break;

/* The tile for mr rows (1 to MR): one unrolled copy per row count, so edge rows run at full speed. */
static void tile_any(int mr, int a_t, int64_t kc, const float *a, int64_t lda, const float *bp, float *c,
                     int64_t ldc, int64_t cols, int accumulate, const float *bias, int rectify) {
    switch (mr) {
        TILE_CASE(1) TILE_CASE(2) TILE_CASE(3) TILE_CASE(4) TILE_CASE(5) TILE_CASE(6)
        TILE_CASE(7) TILE_CASE(8) TILE_CASE(9) TILE_CASE(10) TILE_CASE(11) TILE_CASE(12)
        default: break;
    }
}

/* ---- packing B ---- */

/* Row r of the stored B: b + r * ldb, or b + offsets[r] when B's rows are gathered from elsewhere
 * (a convolution's windows read straight from its input: see nn_sgemm_gathered). */
static inline const float *b_row(const float *b, int64_t ldb, const int64_t *offsets, int64_t r) {
    return offsets ? b + offsets[r] : b + r * ldb;
}

/* B stored row-major (k x n): each sliver row is a copy of NR floats, zero-padded past column n1. */
static void pack_rows_of_b(const float *b, int64_t ldb, const int64_t *offsets, int64_t kc, int64_t j0, int64_t j1,
                           float *bp) {
    for (int64_t s = j0; s < j1; s += G_NR) {
        int64_t w = min64(G_NR, j1 - s);
        __mmask16 m0 = lanes(w), m1 = lanes(w - 16);
        float *dst = bp + (s - j0) * kc;
        for (int64_t p = 0; p < kc; p++) {
            const float *src = b_row(b, ldb, offsets, p) + s;
            _mm512_store_ps(dst + p * G_NR, _mm512_maskz_loadu_ps(m0, src));
            _mm512_store_ps(dst + p * G_NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
        }
    }
}

/* r[j] (16 floats each) becomes its transpose: afterwards r[q] holds element q of every input row. */
static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) { /* pairs of rows interleaved within each 128-bit lane */
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 4; g++) { /* then fours: lane L of u[4g+q] = rows 4g..4g+3 at column 4L+q */
        r[4 * g] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        r[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        r[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        r[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
    for (int q = 0; q < 4; q++) { /* finally a 4 x 4 transpose of the 128-bit lanes */
        __m512 v0 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x44), v1 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xEE);
        __m512 v2 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x44), v3 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xEE);
        t[q] = _mm512_shuffle_f32x4(v0, v2, 0x88);
        t[4 + q] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
        t[8 + q] = _mm512_shuffle_f32x4(v1, v3, 0x88);
        t[12 + q] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

/* B stored transposed (n x k, op(B)[p][j] = b[j * ldb + p]): 16 x 16 blocks are loaded along k,
 * transposed in registers and stored as sliver rows; missing columns and depths load as zeros. */
static void pack_columns_of_b(const float *b, int64_t ldb, const int64_t *offsets, int64_t kc, int64_t j0, int64_t j1,
                              float *bp) {
    __m512 r[16];
    for (int64_t s = j0; s < j1; s += G_NR) {
        float *dst = bp + (s - j0) * kc;
        for (int half = 0; half < 2; half++) {
            int64_t first = s + 16 * half, rows = j1 - first; /* source rows (output columns) present */
            for (int64_t p0 = 0; p0 < kc; p0 += 16) {
                int64_t depth = min64(16, kc - p0);
                __mmask16 mk = lanes(depth);
                for (int j = 0; j < 16; j++)
                    r[j] = j < rows ? _mm512_maskz_loadu_ps(mk, b_row(b, ldb, offsets, first + j) + p0)
                                    : _mm512_setzero_ps();
                transpose16(r);
                for (int64_t q = 0; q < depth; q++) _mm512_store_ps(dst + (p0 + q) * G_NR + 16 * half, r[q]);
            }
        }
    }
}

/* ---- one thread's block of C ---- */

/* A stored transposed (k x m): the tile's mr values of each depth p are contiguous but a whole row
 * of A apart from the next depth's, so a pass touches kc cache lines of A besides the B sliver and
 * overflows L1. Copied here into kc rows of MR floats (one 12 KiB block). */
static void pack_columns_of_a(const float *a, int64_t lda, int64_t kc, int mr, float *ap) {
    __mmask16 mask = (__mmask16)((1u << mr) - 1);
    for (int64_t p = 0; p < kc; p++) _mm512_mask_storeu_ps(ap + p * G_MR, mask, _mm512_maskz_loadu_ps(mask, a + p * lda));
}

/* c[m0:m1, n0:n1] = op(A)[m0:m1, :] @ op(B)[:, n0:n1], packing B into bp (KC x NC floats, 64-byte
 * aligned) and, when A is stored transposed, the tile's rows of A into ap (KC x MR floats). */
static void block(const job_t *job, int64_t m0, int64_t m1, int64_t n0, int64_t n1, float *bp, float *ap) {
    if (job->k == 0) {
        if (job->add_to_c) return;
        for (int64_t i = m0; i < m1; i++) {
            float *row = job->c + i * job->ldc;
            for (int64_t j = n0; j < n1; j++) {
                float v = job->bias ? job->bias[j] : 0.0f;
                row[j] = job->relu && v < 0.0f ? 0.0f : v;
            }
        }
        return;
    }
    for (int64_t jc = n0; jc < n1; jc += G_NC) {
        int64_t jend = min64(n1, jc + G_NC);
        /* Passes of equal depth (288 = 2 x 144, not 256 + 32): a shallow last pass costs a whole
         * load and store of C for little work. */
        int64_t passes = (job->k + G_KC - 1) / G_KC, depth = (job->k + passes - 1) / passes;
        for (int64_t p0 = 0; p0 < job->k; p0 += depth) {
            int64_t kc = min64(depth, job->k - p0);
            if (job->trans_b)
                pack_columns_of_b(job->b + p0, job->ldb, job->b_offsets, kc, jc, jend, bp);
            else if (job->b_offsets)
                pack_rows_of_b(job->b, 0, job->b_offsets + p0, kc, jc, jend, bp);
            else
                pack_rows_of_b(job->b + p0 * job->ldb, job->ldb, NULL, kc, jc, jend, bp);
            for (int64_t i0 = m0; i0 < m1; i0 += G_MR) {
                int mr = (int)min64(G_MR, m1 - i0);
                const float *a = job->a + i0 * job->lda + p0;
                int64_t lda = job->lda;
                if (job->trans_a) { /* its rows' values lie a row of A apart: gather them into L1 first */
                    pack_columns_of_a(job->a + p0 * job->lda + i0, job->lda, kc, mr, ap);
                    a = ap, lda = G_MR;
                }
                for (int64_t s = jc; s < jend; s += G_NR)
                    tile_any(mr, job->trans_a, kc, a, lda, bp + (s - jc) * kc, job->c + i0 * job->ldc + s,
                             job->ldc, min64(G_NR, jend - s), p0 > 0 || job->add_to_c,
                             job->bias ? job->bias + s : NULL, job->relu && p0 + kc >= job->k);
            }
        }
    }
}

/* Each thread's packed blocks, kept between products and grown as needed (at most KC x (NC + MR)
 * floats, about 1 MiB): a fresh allocation per product scattered the heap, and the CNN's peak resident set grew
 * by about 10 MiB (docs/performance.md). Freed when its thread ends. */
static pthread_key_t buffer_key;
static pthread_once_t buffer_key_once = PTHREAD_ONCE_INIT;
static __thread float *buffer;
static __thread size_t buffer_bytes;

static void make_buffer_key(void) { pthread_key_create(&buffer_key, free); }

static float *packing_buffer(size_t bytes) {
    if (buffer_bytes >= bytes) return buffer;
    pthread_once(&buffer_key_once, make_buffer_key);
    free(buffer);
    buffer = NULL, buffer_bytes = 0;
    size_t most = (size_t)G_KC * (G_NC + G_MR) * sizeof(float);
    size_t want = most < bytes ? bytes : most;
    if (posix_memalign((void **)&buffer, 64, want) != 0) {
        buffer = NULL;
        pthread_setspecific(buffer_key, NULL);
        return NULL;
    }
    buffer_bytes = want;
    pthread_setspecific(buffer_key, buffer);
    return buffer;
}

/* Part `part` of the job: an even share of the column slivers or of the row tiles. */
static void run_part(const task_t *task, int part) {
    const job_t *job = (const job_t *)task;
    int64_t units = job->by_columns ? (job->n + G_NR - 1) / G_NR : (job->m + G_MR - 1) / G_MR;
    int64_t u0 = units * part / task->parts, u1 = units * (part + 1) / task->parts;
    if (u0 >= u1) return;
    int64_t m0 = 0, m1 = job->m, n0 = 0, n1 = job->n;
    if (job->by_columns)
        n0 = u0 * G_NR, n1 = min64(job->n, u1 * G_NR);
    else
        m0 = u0 * G_MR, m1 = min64(job->m, u1 * G_MR);
    size_t b_floats = (size_t)G_KC * (size_t)min64(G_NC, (n1 - n0 + G_NR - 1) / G_NR * G_NR);
    float *bp = packing_buffer((b_floats + G_KC * G_MR) * sizeof(float));
    if (!bp) {
        /* No memory for the packed block: leave C as NaN so the failure cannot pass for a result. */
        for (int64_t i = m0; i < m1; i++)
            for (int64_t j = n0; j < n1; j++) job->c[i * job->ldc + j] = __builtin_nanf("");
        return;
    }
    block(job, m0, m1, n0, n1, bp, bp + b_floats);
}

/* ---- the thread pool ----
 * A job is cut into more parts than there are threads, and whoever is free claims the next part
 * through one 64-bit ticket: the job's number in the high half, the next unclaimed part in the low
 * half. The caller claims parts too and waits only for parts a worker has claimed, so a worker still
 * asleep when the job is posted costs nothing: the caller runs the parts itself. A claim is a
 * compare-and-swap that also checks the job's number, so a worker that wakes late never touches a
 * finished job (a job stays alive while any part of it is unfinished). */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_flag busy;            /* held by the caller that owns the pool for its product */
    atomic_uint_fast64_t ticket; /* job number << 32 | next unclaimed part */
    atomic_int done;             /* parts of the current job finished */
    atomic_int parts;            /* parts of the current job */
    atomic_int helpers;          /* workers 0 .. helpers - 1 may claim its parts: the caller's threads - 1 */
    const task_t *job;
    int workers, sleepers;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, ATOMIC_FLAG_INIT, 0, 0, 0, 0, NULL, 0, 0};

/* Claim and run parts of job `number` until none is left. */
static void work_on(uint64_t number) {
    for (;;) {
        uint64_t ticket = atomic_load_explicit(&pool.ticket, memory_order_acquire);
        int part = (int)(uint32_t)ticket;
        if (ticket >> 32 != number || part >= atomic_load_explicit(&pool.parts, memory_order_acquire)) return;
        if (!atomic_compare_exchange_weak_explicit(&pool.ticket, &ticket, ticket + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        pool.job->run(pool.job, part);
        atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
    }
}

static void *worker_main(void *arg) {
    /* The job number when this worker was started (high bits) and the worker's index (low 8 bits):
     * a worker past the caller's thread count sits the job out, so that `threads` is a limit even
     * when an earlier caller asked for more workers. */
    uint64_t seen = (uint64_t)(uintptr_t)arg >> 8;
    int index = (int)((uintptr_t)arg & 0xFF);
    for (;;) {
        uint64_t start = __rdtsc();
        while (atomic_load_explicit(&pool.ticket, memory_order_acquire) >> 32 == seen) {
            if (__rdtsc() - start < atomic_load_explicit(&spin_ticks, memory_order_relaxed)
                && !atomic_load_explicit(&parked, memory_order_relaxed)
                && index < atomic_load_explicit(&pool.helpers, memory_order_relaxed)) {
                _mm_pause();
                continue;
            }
            pthread_mutex_lock(&pool.lock);
            pool.sleepers++;
            while (atomic_load(&pool.ticket) >> 32 == seen) pthread_cond_wait(&pool.wake, &pool.lock);
            pool.sleepers--;
            pthread_mutex_unlock(&pool.lock);
        }
        seen = atomic_load(&pool.ticket) >> 32;
        if (index < atomic_load(&pool.helpers)) work_on(seen);
    }
    return NULL;
}

/* A forked child has none of the parent's threads: start the pool afresh there. */
static void pool_after_fork(void) {
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    atomic_flag_clear(&pool.busy);
    pool.workers = pool.sleepers = 0;
}

/* Start workers up to `wanted`; returns how many there are. */
static int ensure_workers(int wanted) {
    static int fork_handler;
    if (!fork_handler) fork_handler = pthread_atfork(NULL, NULL, pool_after_fork) == 0;
    while (pool.workers < wanted && pool.workers < G_MAX_THREADS - 1) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        void *number = (void *)(uintptr_t)((atomic_load(&pool.ticket) >> 32) << 8 | (uint64_t)pool.workers);
        int failed = pthread_create(&thread, &attr, worker_main, number);
        pthread_attr_destroy(&attr);
        if (failed) break;
        pool.workers++;
    }
    return pool.workers;
}

/* Run the job's parts on the caller and up to threads - 1 workers; all on the caller when the pool
 * is taken by another caller (another Python thread) or no worker can be started. */
static void run_job(const task_t *job, int threads) {
    if (threads > 1 && job->parts > 1 && !atomic_flag_test_and_set(&pool.busy)) {
        if (ensure_workers(threads - 1) > 0) {
            uint64_t number = (atomic_load(&pool.ticket) >> 32) + 1;
            pool.job = job;
            atomic_store_explicit(&parked, 0, memory_order_relaxed);
            atomic_store(&pool.parts, job->parts);
            atomic_store(&pool.helpers, threads - 1);
            atomic_store(&pool.done, 0);
            pthread_mutex_lock(&pool.lock);
            atomic_store_explicit(&pool.ticket, number << 32, memory_order_release);
            if (pool.sleepers) pthread_cond_broadcast(&pool.wake);
            pthread_mutex_unlock(&pool.lock);
            work_on(number);
            while (atomic_load_explicit(&pool.done, memory_order_acquire) < job->parts) _mm_pause();
            atomic_flag_clear(&pool.busy);
            return;
        }
        atomic_flag_clear(&pool.busy);
    }
    for (int part = 0; part < job->parts; part++) job->run(job, part);
}

/* The split into parts and the run, for a job whose operands are set. */
static void run_product(job_t *job, int threads) {
    int64_t m = job->m, n = job->n;
    int64_t slivers = (n + G_NR - 1) / G_NR, tiles = (m + G_MR - 1) / G_MR;
    threads = threads < 1 ? 1 : threads > G_MAX_THREADS ? G_MAX_THREADS : threads;
    /* Cutting columns makes every part read all of A; cutting rows makes every part pack all of B.
     * Columns where A is the smaller (m < n) and there are two slivers per thread, else rows. Parts
     * of two slivers or tiles at least, one per thread: more (each smaller) measured slower in a
     * training step; a worker that is late finds its part taken by the caller. */
    job->by_columns = (m < n && slivers >= 2 * threads) || tiles < 2 * threads;
    int64_t units = job->by_columns ? slivers : tiles;
    job->task.parts = threads == 1 ? 1 : (int)min64(threads, units / 2 > 1 ? units / 2 : 1);
    run_job(&job->task, threads);
}

/* c (m x n, row-major, leading dimension ldc) = op(a) @ op(b) (+ bias), op(x) = x or its transpose.
 * a is m x k (k x m stored when trans_a), b is k x n (n x k stored when trans_b), both row-major with
 * leading dimensions lda and ldb; bias is NULL or n floats added to every row (a linear layer's bias,
 * added as the first depth pass is stored); with relu, negative results are stored as 0 (a linear
 * layer followed by ReLU, applied as the last depth pass is stored). Up to `threads` threads share
 * the work. */
void nn_sgemm(int64_t m, int64_t n, int64_t k, int trans_a, const float *a, int64_t lda, int trans_b,
              const float *b, int64_t ldb, const float *bias, int relu, float *c, int64_t ldc, int threads) {
    if (m <= 0 || n <= 0) return;
    job_t job = {{run_part, 1}, m, n, k, lda, ldb, ldc, trans_a, trans_b, a, b, bias, NULL, 0, relu, c, 1};
    run_product(&job, threads);
}

/* For each of `samples` products s: c_s (m x n) = op(a_s) @ op(b_s), where a_s = a + s * a_stride, c_s =
 * c + s * c_stride, and the stored rows of b_s are gathered: row r starts at b + s * b_stride +
 * b_offsets[r] (k rows of n floats, or n rows of k floats when trans_b). With sum_samples 1 (c_stride
 * 0) the products are summed into one c instead, 2: summed and added to what c holds. A stride-1
 * convolution's products read their windows this way straight from the padded input, with no column
 * matrix (nurinet._runtime.fast.conv). */
void nn_sgemm_gathered(int64_t m, int64_t n, int64_t k, int trans_a, const float *a, int64_t lda, int64_t a_stride,
                       int trans_b, const float *b, const int64_t *b_offsets, int64_t b_stride, float *c,
                       int64_t ldc, int64_t c_stride, int64_t samples, int sum_samples, int threads) {
    if (m <= 0 || n <= 0) return;
    for (int64_t s = 0; s < samples; s++) {
        job_t job = {{run_part, 1}, m, n, k, lda, 0, ldc, trans_a, trans_b, a + s * a_stride, b + s * b_stride, NULL,
                     b_offsets, sum_samples == 2 || (sum_samples == 1 && s > 0), 0, c + s * c_stride, 1};
        run_product(&job, threads);
    }
}


/* ---- optimizer updates on the pool ---- */

/* The slice [*i0, *i1) of n elements that part `part` of `parts` updates (whole cache lines). */
static void slice_of(int64_t n, int part, int parts, int64_t *i0, int64_t *i1) {
    int64_t share = ((n + parts - 1) / parts + 15) / 16 * 16;
    *i0 = min64(n, share * part), *i1 = min64(n, *i0 + share);
}

typedef struct {
    task_t task;
    int64_t n;
    float *p, *buf;
    const float *g;
    float lr, momentum, dampening;
    int nesterov;
} sgd_task_t;

static void sgd_part(const task_t *task, int part) {
    const sgd_task_t *t = (const sgd_task_t *)task;
    int64_t i0, i1;
    slice_of(t->n, part, task->parts, &i0, &i1);
    if (i0 < i1) sgd_momentum_update(i1 - i0, t->p + i0, t->g + i0, t->buf + i0, t->lr, t->momentum, t->dampening,
                                     t->nesterov);
}

/* sgd_momentum_update (kernels.c) over n floats, its slices on the pool's threads: the update streams
 * five arrays through memory, and the workers are then awake for the next step's first product.
 * Python threads cost more to hand the slices to than they save (docs/performance.md). */
void nn_sgd_momentum_update(int64_t n, float *p, const float *g, float *buf, float lr, float momentum,
                            float dampening, int nesterov, int threads) {
    sgd_task_t t = {{sgd_part, threads < 1 ? 1 : threads}, n, p, buf, g, lr, momentum, dampening, nesterov};
    run_job(&t.task, threads);
}

typedef struct {
    task_t task;
    int64_t n;
    float *p, *m, *v, *v_max;
    const float *g;
    float beta1, beta2, sqrt_correction2, eps, step_size;
} adam_task_t;

static void adam_part(const task_t *task, int part) {
    const adam_task_t *t = (const adam_task_t *)task;
    int64_t i0, i1;
    slice_of(t->n, part, task->parts, &i0, &i1);
    if (i0 < i1) adam_update(i1 - i0, t->p + i0, t->g + i0, t->m + i0, t->v + i0, t->v_max ? t->v_max + i0 : NULL,
                             t->beta1, t->beta2, t->sqrt_correction2, t->eps, t->step_size);
}

/* adam_update (kernels.c) over n floats, its slices on the pool's threads, as nn_sgd_momentum_update. */
void nn_adam_update(int64_t n, float *p, const float *g, float *m, float *v, float *v_max, float beta1, float beta2,
                    float sqrt_correction2, float eps, float step_size, int threads) {
    adam_task_t t = {{adam_part, threads < 1 ? 1 : threads}, n, p, m, v, v_max, g, beta1, beta2, sqrt_correction2, eps,
                     step_size};
    run_job(&t.task, threads);
}

#else /* no AVX-512: NumPy's BLAS keeps the products */

int nn_gemm_supported(void) { return 0; }

void nn_gemm_set_spin(int64_t ticks) { (void)ticks; }

void nn_gemm_park(void) {}

void nn_sgd_momentum_update(int64_t n, float *p, const float *g, float *buf, float lr, float momentum,
                            float dampening, int nesterov, int threads) {
    (void)threads;
    sgd_momentum_update(n, p, g, buf, lr, momentum, dampening, nesterov);
}

void nn_adam_update(int64_t n, float *p, const float *g, float *m, float *v, float *v_max, float beta1, float beta2,
                    float sqrt_correction2, float eps, float step_size, int threads) {
    (void)threads;
    adam_update(n, p, g, m, v, v_max, beta1, beta2, sqrt_correction2, eps, step_size);
}

void nn_sgemm_gathered(int64_t m, int64_t n, int64_t k, int trans_a, const float *a, int64_t lda, int64_t a_stride,
                       int trans_b, const float *b, const int64_t *b_offsets, int64_t b_stride, float *c,
                       int64_t ldc, int64_t c_stride, int64_t samples, int sum_samples, int threads) {
    (void)m, (void)n, (void)k, (void)trans_a, (void)a, (void)lda, (void)a_stride, (void)trans_b, (void)b,
        (void)b_offsets, (void)b_stride, (void)c, (void)ldc, (void)c_stride, (void)samples, (void)sum_samples,
        (void)threads;
}

void nn_sgemm(int64_t m, int64_t n, int64_t k, int trans_a, const float *a, int64_t lda, int trans_b,
              const float *b, int64_t ldb, const float *bias, int relu, float *c, int64_t ldc, int threads) {
    (void)m, (void)n, (void)k, (void)trans_a, (void)a, (void)lda, (void)trans_b, (void)b, (void)ldb, (void)bias,
        (void)relu, (void)c, (void)ldc, (void)threads;
}

#endif
