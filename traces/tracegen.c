/* tracegen.c — nexus-tracegen: write a synthetic arrival trace (CSV, one
 * arrival time in seconds per line, header `time_s`) that nexus-sim replays
 * with a `trace:` section. Arrival laws: Poisson, Gamma with a coefficient of
 * variation (bursty for cv > 1), uniform, and rate steps over time. GSL
 * draws; the same seed gives the same file. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nexus-tracegen --rate R --duration S [--cv C | --uniform] [--steps T:R,...] [--seed N]\n"
            "\n"
            "Writes arrival times (seconds) as CSV to stdout, header 'time_s'.\n"
            "  --rate R        mean arrivals per second (> 0)\n"
            "  --duration S    seconds of trace (> 0)\n"
            "  --cv C          Gamma inter-arrivals with this coefficient of variation (1 = Poisson)\n"
            "  --uniform       constant inter-arrivals 1/R\n"
            "  --steps T:R,..  piecewise-constant rate: from time T on the rate is R (overrides --rate)\n"
            "  --seed N        PRNG seed (default 1)\n");
}

static int num(const char *flag, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0) {
        fprintf(stderr, "nexus-tracegen: %s: '%s' is not a non-negative number\n", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

#define MAX_STEPS 256

int main(int argc, char **argv)
{
    double rate = 0, duration = 0, cv = 1, seed = 1;
    int uniform = 0, nsteps = 0;
    double st_t[MAX_STEPS], st_r[MAX_STEPS];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--uniform")) {
            uniform = 1;
        } else if (v && !strcmp(a, "--rate")) {
            if (num(a, argv[++i], &rate))
                return 2;
        } else if (v && !strcmp(a, "--duration")) {
            if (num(a, argv[++i], &duration))
                return 2;
        } else if (v && !strcmp(a, "--cv")) {
            if (num(a, argv[++i], &cv) || cv <= 0) {
                fprintf(stderr, "nexus-tracegen: --cv must be > 0\n");
                return 2;
            }
        } else if (v && !strcmp(a, "--seed")) {
            if (num(a, argv[++i], &seed))
                return 2;
        } else if (v && !strcmp(a, "--steps")) {
            char *list = strdup(argv[++i]), *save = NULL;
            for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char *colon = strchr(tok, ':');
                if (!colon || nsteps == MAX_STEPS) {
                    fprintf(stderr, "nexus-tracegen: --steps: '%s' is not T:R\n", tok);
                    free(list);
                    return 2;
                }
                *colon = 0;
                if (num("--steps", tok, &st_t[nsteps]) || num("--steps", colon + 1, &st_r[nsteps]) ||
                    (nsteps > 0 && st_t[nsteps] <= st_t[nsteps - 1])) {
                    fprintf(stderr, "nexus-tracegen: --steps: times must increase\n");
                    free(list);
                    return 2;
                }
                nsteps++;
            }
            free(list);
        } else {
            fprintf(stderr, "nexus-tracegen: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (nsteps == 0 && rate > 0) {
        st_t[0] = 0;
        st_r[0] = rate;
        nsteps = 1;
    }
    if (nsteps == 0 || !(duration > 0) || st_t[0] != 0) {
        fprintf(stderr, "nexus-tracegen: need --rate (or --steps starting at 0) and --duration\n");
        usage(stderr);
        return 2;
    }
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, (unsigned long)seed);
    printf("time_s\n");
    double t = 0;
    int k = 0;
    while (t < duration) {
        double bound = k + 1 < nsteps ? st_t[k + 1] : INFINITY;
        double r = st_r[k];
        double gap = INFINITY;
        if (r > 0) {
            if (uniform)
                gap = 1.0 / r;
            else if (cv == 1)
                gap = gsl_ran_exponential(rng, 1.0 / r);
            else
                gap = gsl_ran_gamma(rng, 1.0 / (cv * cv), cv * cv / r);
        }
        if (t + gap >= bound) { /* the rate changes first: restart there */
            t = bound;
            k++;
            continue;
        }
        t += gap;
        if (t < duration)
            printf("%.9f\n", t);
    }
    gsl_rng_free(rng);
    return ferror(stdout) ? 1 : 0;
}
