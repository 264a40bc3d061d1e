// SPDX-License-Identifier: Apache-2.0
// Kernels of the guest driver-API tests, compiled by nvcc at build time (fatbinary with PTX, and
// PTX text). extern "C" keeps entry names plain. Each is small: the sim interprets them.

// Module-scope variables for cuModuleGetGlobal.
__device__ int g_data[4];
__constant__ int c_data[8];

extern "C" __global__ void fill_u32(unsigned *p, unsigned v, int n)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n)
                p[i] = v;
}

extern "C" __global__ void add_one(int *p, int n)
{
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n)
                p[i] += 1;
}

// out[i] = g_data[i % 4] + c_data[i % 8]; then g_data[i] += 1 for i < 4 (after a barrier).
extern "C" __global__ void read_globals(int *out, int n)
{
        int i = threadIdx.x;
        if (i < n)
                out[i] = g_data[i % 4] + c_data[i % 8];
        __syncthreads();
        if (i < 4)
                g_data[i] += 1;
}

// Mixed parameter types; the ABI puts them at offsets 0, 2, 4, 8, 16, 24, 40, 48 (sizes 1, 2, 4,
// 8, 8, 16, 8, 4). Every value lands in out[0..9] as 64-bit words.
struct mixed_s {
        int a;
        float b[3];
};

extern "C" __global__ void mixed_params(char c, short s, int i, double d, unsigned long long *out,
                                        struct mixed_s st, long long ll, float f)
{
        if (threadIdx.x != 0 || blockIdx.x != 0)
                return;
        out[0] = (unsigned long long)(long long)c;
        out[1] = (unsigned long long)(long long)s;
        out[2] = (unsigned long long)(long long)i;
        out[3] = (unsigned long long)__double_as_longlong(d);
        out[4] = (unsigned long long)(long long)st.a;
        out[5] = __float_as_uint(st.b[0]);
        out[6] = __float_as_uint(st.b[1]);
        out[7] = __float_as_uint(st.b[2]);
        out[8] = (unsigned long long)ll;
        out[9] = __float_as_uint(f);
}

// out[linear global thread index] = that index + 1, over a 3D grid of 3D blocks.
extern "C" __global__ void index3d(unsigned *out)
{
        unsigned block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
        unsigned tid = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
        unsigned nthreads = blockDim.x * blockDim.y * blockDim.z;
        unsigned g = block * nthreads + tid;
        out[g] = g + 1;
}

// Reverse each block's slice of io through dynamic shared memory (blockDim.x ints of it).
extern "C" __global__ void reverse_dynamic(int *io)
{
        extern __shared__ int dyn[];
        int t = threadIdx.x;
        int base = blockIdx.x * blockDim.x;
        dyn[t] = io[base + t];
        __syncthreads();
        io[base + t] = dyn[blockDim.x - 1 - t];
}

// The same through a static 1 KiB array; blockDim.x must be 256.
extern "C" __global__ void reverse_static(int *io)
{
        __shared__ int st[256];
        int t = threadIdx.x;
        int base = blockIdx.x * 256;
        st[t] = io[base + t];
        __syncthreads();
        io[base + t] = st[255 - t];
}

// At most 128 threads per block.
extern "C" __global__ void __launch_bounds__(128) bounded(int *p)
{
        p[blockIdx.x * blockDim.x + threadIdx.x] = (int)threadIdx.x;
}

// Store v at p[threadIdx.x]; the error tests pass an address no allocation covers.
extern "C" __global__ void store_to(int *p, int v)
{
        p[threadIdx.x] = v;
}

extern "C" __global__ void trap_kernel(int *p)
{
        if (threadIdx.x == 0)
                __trap();
        p[threadIdx.x] = 1;
}
