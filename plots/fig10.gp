# Fig. 10: the game app (plots/experiments.sh). Variable: dir.
fig = 'fig10'; base = 'TF-Serving-like'
ttl = 'Fig. 10: game app, 16 GPUs, throughput at <= 1 % bad, relative to TF-Serving'
load 'plots/bars.gp'
