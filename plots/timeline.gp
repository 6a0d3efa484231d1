# GPUs used by the plan over time, per policy. Variables: dir, names, n.
set terminal pngcairo size 900,500 noenhanced
set output dir.'/timeline.png'
set title 'GPUs used over time'
set xlabel 'time (s)'
set ylabel 'GPUs with a session'
set grid
set key bottom right
set yrange [0:*]
plot for [i=0:n-1] dir.'/timeline.dat' index i using 1:2 with lines lw 2 title word(names, i+1)
