/*
 * cuda_observe.cu: handing observed states to the observer without
 * stopping the GPU (spiral record --device cuda).
 *
 * A state is copied with cudaMemcpyAsync into one of OBSERVE_SLOTS pinned
 * host buffers, in stream order (the kernels after it cannot overwrite it
 * first), and an event marks the copy's end. The observer gets the states
 * in the order they were observed: the oldest when every slot is taken,
 * all of them before an attention event (those are handed over at once)
 * and at the end of the pass. So while the observer writes one state to
 * the store, the GPU goes on with the layers after it.
 */
#include "cuda_model.cuh"

#include <string.h>

#include "cuda_check.cuh"

/* Hands the oldest pending state to the observer (waiting for its copy). */
static int deliver_oldest(CudaModel *model, const CudaObserver *observer) {
    ObserveQueue *q = &model->observe_queue;
    int slot = q->first;
    CUDA_CHECK(cudaEventSynchronize(q->done[slot]));
    CudaObserveEvent event = q->pending[slot];
    q->first = (q->first + 1) % OBSERVE_SLOTS;
    q->count--;
    observer->fn(observer->user, &event);
    return 0;
}

int observe_queue_flush(CudaModel *model, const CudaObserver *observer) {
    while (model->observe_queue.count > 0)
        if (deliver_oldest(model, observer)) return -1;
    return 0;
}

void observe_queue_drop(CudaModel *model) {
    model->observe_queue.first = 0;
    model->observe_queue.count = 0;
}

int observe_queue_push(CudaModel *model, const CudaObserver *observer,
                       const CudaObserveEvent *event, const float *device_data) {
    ObserveQueue *q = &model->observe_queue;
    if (q->count == OBSERVE_SLOTS && deliver_oldest(model, observer)) return -1;
    int slot = (q->first + q->count) % OBSERVE_SLOTS;
    size_t count = (size_t)event->B * event->rows * event->cols;
    if (!q->done[slot]) CUDA_CHECK(cudaEventCreateWithFlags(&q->done[slot], cudaEventDisableTiming));
    if (count > q->capacity[slot]) {
        /* the slot is free: its last copy was delivered, so waited for */
        cudaFreeHost(q->host[slot]);
        q->host[slot] = NULL;
        q->capacity[slot] = 0;
        CUDA_CHECK(cudaMallocHost(&q->host[slot], count * sizeof(float)));
        q->capacity[slot] = count;
    }
    CUDA_CHECK(cudaMemcpyAsync(q->host[slot], device_data, count * sizeof(float),
                               cudaMemcpyDeviceToHost, model->stream));
    CUDA_CHECK(cudaEventRecord(q->done[slot], model->stream));
    q->pending[slot] = *event;
    q->pending[slot].data = q->host[slot];
    q->count++;
    return 0;
}

void observe_queue_free(ObserveQueue *q) {
    for (int i = 0; i < OBSERVE_SLOTS; i++) {
        cudaFreeHost(q->host[i]);
        if (q->done[i]) cudaEventDestroy(q->done[i]);
    }
    memset(q, 0, sizeof *q);
}
