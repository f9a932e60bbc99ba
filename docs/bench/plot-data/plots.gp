set terminal pngcairo size 900,540 font 'sans,10'
set logscale x 10
set key outside right
set grid
set xlabel 'services'
set offsets graph 0.05, graph 0.05, 0, 0
set output '/work/main/docs/bench/crr_rate.png'
set title 'connection rate, x direct'
set ylabel 'x direct'
set yrange [0:*]
plot '/work/main/docs/bench/plot-data/crr_rate-ferry-local.dat' using 1:2 with linespoints title 'ferry local', '/work/main/docs/bench/plot-data/crr_rate-ferry-remote.dat' using 1:2 with linespoints title 'ferry remote', '/work/main/docs/bench/plot-data/crr_rate-ferry-nodeport.dat' using 1:2 with linespoints title 'ferry nodeport', '/work/main/docs/bench/plot-data/crr_rate-iptables-local.dat' using 1:2 with linespoints title 'iptables local', '/work/main/docs/bench/plot-data/crr_rate-iptables-remote.dat' using 1:2 with linespoints title 'iptables remote', '/work/main/docs/bench/plot-data/crr_rate-iptables-nodeport.dat' using 1:2 with linespoints title 'iptables nodeport', '/work/main/docs/bench/plot-data/crr_rate-nft-local.dat' using 1:2 with linespoints title 'nft local', '/work/main/docs/bench/plot-data/crr_rate-nft-remote.dat' using 1:2 with linespoints title 'nft remote', '/work/main/docs/bench/plot-data/crr_rate-nft-nodeport.dat' using 1:2 with linespoints title 'nft nodeport'
set output '/work/main/docs/bench/tcp1_gbps.png'
set title 'TCP 1 stream, x direct'
set ylabel 'x direct'
set yrange [0:*]
plot '/work/main/docs/bench/plot-data/tcp1_gbps-ferry-local.dat' using 1:2 with linespoints title 'ferry local', '/work/main/docs/bench/plot-data/tcp1_gbps-ferry-remote.dat' using 1:2 with linespoints title 'ferry remote', '/work/main/docs/bench/plot-data/tcp1_gbps-ferry-nodeport.dat' using 1:2 with linespoints title 'ferry nodeport', '/work/main/docs/bench/plot-data/tcp1_gbps-iptables-local.dat' using 1:2 with linespoints title 'iptables local', '/work/main/docs/bench/plot-data/tcp1_gbps-iptables-remote.dat' using 1:2 with linespoints title 'iptables remote', '/work/main/docs/bench/plot-data/tcp1_gbps-iptables-nodeport.dat' using 1:2 with linespoints title 'iptables nodeport', '/work/main/docs/bench/plot-data/tcp1_gbps-nft-local.dat' using 1:2 with linespoints title 'nft local', '/work/main/docs/bench/plot-data/tcp1_gbps-nft-remote.dat' using 1:2 with linespoints title 'nft remote', '/work/main/docs/bench/plot-data/tcp1_gbps-nft-nodeport.dat' using 1:2 with linespoints title 'nft nodeport'
set output '/work/main/docs/bench/tcp4_gbps.png'
set title 'TCP 4 streams, x direct'
set ylabel 'x direct'
set yrange [0:*]
plot '/work/main/docs/bench/plot-data/tcp4_gbps-ferry-local.dat' using 1:2 with linespoints title 'ferry local', '/work/main/docs/bench/plot-data/tcp4_gbps-ferry-remote.dat' using 1:2 with linespoints title 'ferry remote', '/work/main/docs/bench/plot-data/tcp4_gbps-ferry-nodeport.dat' using 1:2 with linespoints title 'ferry nodeport', '/work/main/docs/bench/plot-data/tcp4_gbps-iptables-local.dat' using 1:2 with linespoints title 'iptables local', '/work/main/docs/bench/plot-data/tcp4_gbps-iptables-remote.dat' using 1:2 with linespoints title 'iptables remote', '/work/main/docs/bench/plot-data/tcp4_gbps-iptables-nodeport.dat' using 1:2 with linespoints title 'iptables nodeport', '/work/main/docs/bench/plot-data/tcp4_gbps-nft-local.dat' using 1:2 with linespoints title 'nft local', '/work/main/docs/bench/plot-data/tcp4_gbps-nft-remote.dat' using 1:2 with linespoints title 'nft remote', '/work/main/docs/bench/plot-data/tcp4_gbps-nft-nodeport.dat' using 1:2 with linespoints title 'nft nodeport'
set output '/work/main/docs/bench/udp64_kpps.png'
set title 'UDP 64 B packet rate, x direct'
set ylabel 'x direct'
set yrange [0:*]
plot '/work/main/docs/bench/plot-data/udp64_kpps-ferry-local.dat' using 1:2 with linespoints title 'ferry local', '/work/main/docs/bench/plot-data/udp64_kpps-ferry-remote.dat' using 1:2 with linespoints title 'ferry remote', '/work/main/docs/bench/plot-data/udp64_kpps-ferry-nodeport.dat' using 1:2 with linespoints title 'ferry nodeport', '/work/main/docs/bench/plot-data/udp64_kpps-iptables-local.dat' using 1:2 with linespoints title 'iptables local', '/work/main/docs/bench/plot-data/udp64_kpps-iptables-remote.dat' using 1:2 with linespoints title 'iptables remote', '/work/main/docs/bench/plot-data/udp64_kpps-iptables-nodeport.dat' using 1:2 with linespoints title 'iptables nodeport', '/work/main/docs/bench/plot-data/udp64_kpps-nft-local.dat' using 1:2 with linespoints title 'nft local', '/work/main/docs/bench/plot-data/udp64_kpps-nft-remote.dat' using 1:2 with linespoints title 'nft remote', '/work/main/docs/bench/plot-data/udp64_kpps-nft-nodeport.dat' using 1:2 with linespoints title 'nft nodeport'
set output '/work/main/docs/bench/programming.png'
set title 'time to program all services (10 endpoints each)'
set ylabel 'ms'
set logscale y 10
set yrange [*:*]
plot '/work/main/docs/bench/plot-data/program-ferry.dat' using 1:2 with linespoints title 'ferry', '/work/main/docs/bench/plot-data/program-iptables.dat' using 1:2 with linespoints title 'iptables', '/work/main/docs/bench/plot-data/program-nft.dat' using 1:2 with linespoints title 'nft'
unset logscale y
set output '/work/main/docs/bench/bpf_per_packet.png'
set title 'per-packet cost, BPF\_PROG\_TEST\_RUN (median)'
set ylabel 'ns'
set yrange [0:*]
plot '/work/main/docs/bench/plot-data/bpf-empty_xdp.dat' using 1:2 with linespoints title 'empty_xdp', '/work/main/docs/bench/plot-data/bpf-empty_tc.dat' using 1:2 with linespoints title 'empty_tc', '/work/main/docs/bench/plot-data/bpf-clusterip_new.dat' using 1:2 with linespoints title 'clusterip_new', '/work/main/docs/bench/plot-data/bpf-clusterip_established.dat' using 1:2 with linespoints title 'clusterip_established', '/work/main/docs/bench/plot-data/bpf-clusterip_reply.dat' using 1:2 with linespoints title 'clusterip_reply', '/work/main/docs/bench/plot-data/bpf-nodeport_xdp_new.dat' using 1:2 with linespoints title 'nodeport_xdp_new', '/work/main/docs/bench/plot-data/bpf-nodeport_xdp_established.dat' using 1:2 with linespoints title 'nodeport_xdp_established', '/work/main/docs/bench/plot-data/bpf-nodeport_tc_new.dat' using 1:2 with linespoints title 'nodeport_tc_new', '/work/main/docs/bench/plot-data/bpf-nodeport_tc_established.dat' using 1:2 with linespoints title 'nodeport_tc_established'
