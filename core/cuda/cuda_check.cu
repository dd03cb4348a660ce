/*
 * cuda_check.cu: turns CUDA and cuBLAS status codes into spiral errors.
 */
#include "cuda_check.cuh"

extern "C" {
#include "error.h"
}

int cuda_status(cudaError_t status, const char *what) {
    if (status == cudaSuccess) return 0;
    return spiral_error("%s: CUDA error %d (%s)", what, (int)status, cudaGetErrorString(status));
}

int cuda_status(cublasStatus_t status, const char *what) {
    if (status == CUBLAS_STATUS_SUCCESS) return 0;
    return spiral_error("%s: cuBLAS error %d (%s)", what, (int)status,
                        cublasGetStatusString(status));
}

int cuda_launched(const char *what) {
    return cuda_status(cudaGetLastError(), what);
}

/* The kernels whose limit was raised, and to what (a few dozen at most:
 * the attention's instantiations and the cross-entropy's). */
enum { SMEM_KERNELS = 64 };
static const void *smem_kernel[SMEM_KERNELS];
static size_t smem_allowed[SMEM_KERNELS];
static int smem_count;

int cuda_allow_smem(const void *kernel, size_t bytes, const char *what) {
    if (bytes <= 48 * 1024) return 0;
    int i = 0;
    while (i < smem_count && smem_kernel[i] != kernel) i++;
    if (i < smem_count && smem_allowed[i] >= bytes) return 0;
    if (i == SMEM_KERNELS)
        return spiral_error("%s: more than %d kernels with large shared memory", what,
                            SMEM_KERNELS);
    if (cuda_status(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         (int)bytes),
                    what))
        return -1;
    if (i == smem_count) smem_kernel[smem_count++] = kernel;
    smem_allowed[i] = bytes;
    return 0;
}
