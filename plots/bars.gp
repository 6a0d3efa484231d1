# Relative throughput bars, ours beside the paper's (Fig. 10, 11). Variables:
# dir, fig, ttl, base. Data: DIR/FIG.dat "i label ours/base paper/base ours".
set terminal pngcairo size 1000,560 noenhanced
set output dir.'/'.fig.'.png'
set grid y
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key top right
set title ttl
set ylabel 'throughput relative to '.base
set xtics rotate by -20
set yrange [0:*]
set datafile missing '-'
plot dir.'/'.fig.'.dat' using 3:xtic(2) lc rgb '#1f77b4' title 'ours (H100 fp32, simulated)', \
     '' using 4 lc rgb '#bbbbbb' title 'paper (SOSP19)', \
     '' using ($0):3:(sprintf('%.0f/s', $5)) with labels offset -2,0.7 font ',8' notitle
