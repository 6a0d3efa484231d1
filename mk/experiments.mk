# mk/experiments.mk — the paper's experiments (SOSP'19 §7) in the simulator:
# experiments/*.yml and experiments/*/ (written by experiments/gen.py), run by
# experiments/run.sh, drawn by plots/experiments.sh; experiments/README.md
# explains them and compares our numbers with the paper's.
# Included by the main Makefile (see "Subsystems outside the simulator" there).
#
#   make experiments        every experiment (main settings, a few minutes on 2 cores) -> results/NAME/
#   make experiments-long   more seeds, the 1000 s cluster run, sensitivity runs      -> results/long/NAME/
#   make experiments plots  ... and the standard per-experiment plots of plots/plot.sh
#
# EXP_JOBS experiments run at once (default: the number of CPUs, at most 4);
# EXP_ONLY="fig09_early_drop fig15_prefix" runs a subset.

DEB_PACKAGES += python3
$(DEPS_STAMP): mk/experiments.mk

# longest first, so that parallel jobs finish together
EXP_NAMES := fig13_cluster100 paper_era_dgx paper_era paper_era_gpu fig10_game fig10_game_resnet_only fig16_squishy fig17_query_split \
	fig14_multiplex fig11_traffic fig15_prefix fig09_early_drop
EXP_LONG_NAMES := $(EXP_NAMES) sensitivity
EXP_ONLY ?=
EXP_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)
EXP_SIM := $(BUILD)/bin/nexus-sim

.PHONY: experiments experiments-long

experiments: $(EXP_SIM) | $(DEPS_STAMP)
	$(Q)start=$$(date +%s); \
	names="$(or $(EXP_ONLY),$(EXP_NAMES))"; \
	printf '%s\n' $$names | xargs -P $(EXP_JOBS) -I{} env NEXUS_SIM=$(EXP_SIM) experiments/run.sh {} || exit 1; \
	plots/experiments.sh results || exit 1; \
	echo "experiments: $$(( $$(date +%s) - start )) s in all"

experiments-long: $(EXP_SIM) | $(DEPS_STAMP)
	$(Q)start=$$(date +%s); \
	names="$(or $(EXP_ONLY),$(EXP_LONG_NAMES))"; \
	printf '%s\n' $$names | xargs -P $(EXP_JOBS) -I{} env NEXUS_SIM=$(EXP_SIM) experiments/run.sh {} long || exit 1; \
	plots/experiments.sh results/long || exit 1; \
	echo "experiments-long: $$(( $$(date +%s) - start )) s in all"
