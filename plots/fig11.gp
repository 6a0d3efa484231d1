# Fig. 11: the traffic app (plots/experiments.sh). Variable: dir.
fig = 'fig11'; base = 'TF-Serving-like'
ttl = 'Fig. 11: traffic app, 16 GPUs, throughput at <= 1 % bad, relative to TF-Serving'
load 'plots/bars.gp'
