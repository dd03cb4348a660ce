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
