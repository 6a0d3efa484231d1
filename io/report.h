/* report.h — writing a set of runs to DIR: summary.json (one entry per policy
 * combination), requests.csv (every request of each combination's reported
 * run) and gnuplot-ready data files (latency CDF, rate sweep, GPU timeline). */
#ifndef NX_REPORT_H
#define NX_REPORT_H

#include "result.h"

typedef struct nx_sweep_pt {
    double scale, offered, goodput, bad_rate, gpus_used;
} nx_sweep_pt;

typedef struct nx_combo_report {
    const nx_combo *combo;
    nx_run_result run;        /* the reported run (at the max rate when searching) */
    bool searched;
    double max_rate;          /* offered req/s at the highest scale with bad rate <= 1 % */
    bool max_rate_capped;     /* the search's upper bound still met the target */
    nx_sweep_pt *sweep;       /* every run of the search, sorted by scale */
    int nsweep;
} nx_combo_report;

int nx_report_write(const char *dir, const nx_experiment *x, const nx_combo_report *reps,
                    int n, uint64_t seed, bool write_requests, nx_errbuf *eb);

#endif
