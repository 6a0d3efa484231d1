/* prepost.h — the CPU work around a model: turning a JPEG into the model's input tensor and
 * turning the model's output into an answer. The backend runs these per request beside the
 * GPU; nexus-profile measures them (a profile's preprocess_us and postprocess_us). */
#ifndef NX_DNN_PREPOST_H
#define NX_DNN_PREPOST_H

#include <stddef.h>
#include <stdint.h>

#include "nx.h"

/* Decode a JPEG (libjpeg), resize it bilinearly to h x w, and write it as a c x h x w float
 * tensor (c = 3: RGB normalised with the ImageNet mean/std; c = 1: grey in [0, 1]).
 * `scratch` holds at least nx_pre_scratch_size(jpeg) bytes, or is NULL (then the function
 * allocates). NX_ERR_PARSE for a corrupt image. */
int nx_pre_image(const uint8_t *jpeg, size_t len, int c, int h, int w, float *out,
                 void *scratch, size_t scratch_len, nx_errbuf *eb);
/* Bytes of decoded pixels the image needs (0 if the header is unreadable). */
size_t nx_pre_scratch_size(const uint8_t *jpeg, size_t len);

/* Classification: softmax over k logits and the indices/probabilities of the top n (n <= k),
 * best first. */
void nx_post_classify(const float *logits, int k, int n, int *idx, float *prob);

typedef struct nx_detection {
    float x0, y0, x1, y1;   /* in [0, 1] image coordinates */
    float score;
    int label;              /* 1.. classes-1 (0 is background) */
} nx_detection;

/* SSD300's 8732 default boxes (cx, cy, w, h), as torchvision's DefaultBoxGenerator makes
 * them for ssd300_vgg16; anchors holds 4 * 8732 floats. Returns the count. */
int nx_ssd300_anchors(float *anchors, int max);

/* SSD post-processing of one image (torchvision's SSD.postprocess_detections): decode the
 * box regressions [n][4] against the anchors (variances 0.1, 0.2), softmax the logits
 * [n][classes], keep per class the best `topk` (400) scores above 0.01, non-maximum
 * suppression at IoU 0.45, and the best `max` (200) detections overall into out.
 * `work` holds nx_post_ssd_work_size(n, classes) bytes. Returns the number of detections. */
size_t nx_post_ssd_work_size(int n, int classes);
int nx_post_ssd(const float *boxes, const float *logits, const float *anchors, int n,
                int classes, nx_detection *out, int max, void *work);

#endif
