/*
 * cuda_graph.cu: the forward and backward passes as CUDA graphs, so that a
 * small model's step is not bound by the CPU's kernel launches.
 *
 * A pass (everything the forward or backward enqueues after the inputs are
 * uploaded) runs eagerly the first time it meets a key: the shapes and every
 * device buffer the kernels are given (arena, the products' work buffers)
 * and a host value the pass bakes into its launches (the forward: whether
 * there are targets; the backward: their number, in the loss scale). The
 * second run with the same key is captured into a graph, which is then
 * launched, and replayed from then on; a new key drops it. The kernels
 * launched are the same, in the same order, so a replay computes exactly
 * what the eager pass computes (test_cuda_engine compares them bit for bit).
 *
 * Eager always: with CudaOptions.eager, an observer (its callbacks wait for
 * the GPU), SPIRAL_CUDA_PROFILE, NaN poisoning, or after a capture failed
 * (then the model stays eager and says nothing: results are the same).
 */
#include "cuda_model.cuh"

#include <string.h>

#include "cuda_check.cuh"

/* The key of a pass at this moment. */
static GraphKey current_key(const CudaModel *model, int baked) {
    GraphKey key;
    memset(&key, 0, sizeof key); /* padding included: keys compare with memcmp */
    key.B = model->B;
    key.L = model->L;
    key.baked = baked;
    key.arena = model->arena;
    key.arena_bytes = model->arena_bytes;
    key.work = model->gemm.work;
    key.work_bytes = model->gemm.work_bytes;
    key.keep = model->gemm.keep;
    key.keep_bytes = model->gemm.keep_bytes;
    return key;
}

void graph_slot_free(GraphSlot *slot) {
    if (slot->exec) cudaGraphExecDestroy(slot->exec);
    memset(slot, 0, sizeof *slot);
}

int graph_run(CudaModel *model, GraphSlot *slot, int baked, GraphPass pass, const void *arg) {
    cudaStream_t s = model->stream;
    if (model->options.eager || model->gemm.profile || model->poison || model->graphs_failed)
        return pass(model, arg);
    GraphKey key = current_key(model, baked);
    int same = slot->seen && memcmp(&key, &slot->key, sizeof key) == 0;
    if (same && slot->exec) {
        model->graph_launches++;
        return cuda_status(cudaGraphLaunch(slot->exec, s), "cudaGraphLaunch");
    }
    if (!same) {
        graph_slot_free(slot);
        if (pass(model, arg)) return -1;
        slot->key = current_key(model, baked); /* buffers may have grown */
        slot->seen = 1;
        return 0;
    }
    /* second run with this key: capture it, then launch the graph */
    if (cuda_status(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal),
                    "cudaStreamBeginCapture"))
        return -1;
    int status = pass(model, arg);
    cudaGraph_t graph = NULL;
    cudaError_t ended = cudaStreamEndCapture(s, &graph);
    cudaGraphExec_t exec = NULL;
    if (status == 0 && ended == cudaSuccess && graph &&
        cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess && exec) {
        cudaGraphDestroy(graph);
        slot->exec = exec;
        model->graph_launches++;
        return cuda_status(cudaGraphLaunch(exec, s), "cudaGraphLaunch");
    }
    /* something in the pass cannot be captured: stay eager from now on */
    if (graph) cudaGraphDestroy(graph);
    (void)cudaGetLastError();
    model->graphs_failed = 1;
    graph_slot_free(slot);
    return pass(model, arg);
}
