# Latency CDF per policy (answered requests; the curve tops out at the
# fraction answered, so drops show as a gap below 1).
# Variables: dir, names (space-separated policy names), n.
set terminal pngcairo size 900,600 noenhanced
set output dir.'/latency_cdf.png'
set title 'Request latency CDF'
set xlabel 'latency (ms)'
set ylabel 'fraction of requests'
set yrange [0:1.02]
set grid
set key bottom right
plot for [i=0:n-1] dir.'/latency_cdf.dat' index i using 1:2 with lines lw 2 title word(names, i+1)
