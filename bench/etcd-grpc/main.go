// etcd-grpc: a closed-loop load generator for etcd's native gRPC API (the fair etcd anchor:
// kvbench drives etcd through its JSON gateway, which costs etcd extra CPU). Prints one JSON
// line: ops/s, errors, latency percentiles and, with -cpu-pids, the servers' CPU seconds
// over the measured window. Used by scripts/bench-compare.sh; built by build.sh.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
)

func main() {
	endpoints := flag.String("endpoints", "127.0.0.1:2379", "comma-separated client endpoints")
	clients := flag.Int("clients", 16, "concurrent closed-loop clients")
	conns := flag.Int("conns", 1, "gRPC connections the clients share")
	duration := flag.Duration("duration", 10*time.Second, "measured time")
	warmup := flag.Duration("warmup", 2*time.Second, "unmeasured time before")
	op := flag.String("op", "put", "put or get (linearizable)")
	keys := flag.Int("keys", 10000, "key space")
	valueSize := flag.Int("value-size", 100, "bytes per value")
	preload := flag.Bool("preload", false, "write every key once before measuring")
	cpuPids := flag.String("cpu-pids", "", "comma-separated server PIDs: report their utime+stime over the measured window")
	flag.Parse()

	eps := strings.Split(*endpoints, ",")
	cs := make([]*clientv3.Client, *conns)
	for i := range cs {
		c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
		if err != nil {
			fmt.Fprintln(os.Stderr, "connect:", err)
			os.Exit(1)
		}
		defer c.Close()
		cs[i] = c
	}
	val := strings.Repeat("v", *valueSize)
	if *preload {
		var wg sync.WaitGroup
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for k := w; k < *keys; k += 16 {
					cs[w%len(cs)].Put(context.Background(), fmt.Sprintf("k%08d", k), val)
				}
			}(w)
		}
		wg.Wait()
	}
	var measuring, stop int32
	var errs int64
	lats := make([][]time.Duration, *clients)
	var wg sync.WaitGroup
	for i := 0; i < *clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := cs[i%len(cs)]
			r := rand.New(rand.NewSource(int64(i)))
			for atomic.LoadInt32(&stop) == 0 {
				key := fmt.Sprintf("k%08d", r.Intn(*keys))
				t := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				var err error
				if *op == "put" {
					_, err = c.Put(ctx, key, val)
				} else {
					_, err = c.Get(ctx, key)
				}
				cancel()
				if atomic.LoadInt32(&measuring) == 1 {
					if err != nil {
						atomic.AddInt64(&errs, 1)
					} else {
						lats[i] = append(lats[i], time.Since(t))
					}
				}
			}
		}(i)
	}
	time.Sleep(*warmup)
	cpu0, cpuOk0 := cpuTicks(*cpuPids)
	atomic.StoreInt32(&measuring, 1)
	start := time.Now()
	time.Sleep(*duration)
	atomic.StoreInt32(&measuring, 0)
	el := time.Since(start)
	cpu1, cpuOk1 := cpuTicks(*cpuPids)
	atomic.StoreInt32(&stop, 1)
	wg.Wait()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(float64(len(all)-1)*p)].Microseconds()) / 1000
	}
	out := map[string]interface{}{
		"op": *op, "clients": *clients, "conns": *conns, "ops": len(all), "errors": errs,
		"ops_per_s": float64(len(all)) / el.Seconds(), "p50_ms": pct(0.5), "p99_ms": pct(0.99),
	}
	if *cpuPids != "" && cpuOk0 && cpuOk1 {
		// USER_HZ is 100 on every Linux ABI Go supports (sysconf(_SC_CLK_TCK) without cgo).
		out["server_cpu_s"] = float64(cpu1-cpu0) / 100
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}

// cpuTicks sums utime+stime (clock ticks) of the given processes from /proc/PID/stat.
func cpuTicks(pids string) (int64, bool) {
	if pids == "" {
		return 0, false
	}
	var sum int64
	for _, p := range strings.Split(pids, ",") {
		b, err := os.ReadFile("/proc/" + strings.TrimSpace(p) + "/stat")
		if err != nil {
			return 0, false
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')') // the command name may contain spaces
		if i < 0 {
			return 0, false
		}
		f := strings.Fields(s[i+1:]) // f[0] is field 3 (state); utime is field 14, stime 15
		if len(f) < 13 {
			return 0, false
		}
		u, e1 := strconv.ParseInt(f[11], 10, 64)
		st, e2 := strconv.ParseInt(f[12], 10, 64)
		if e1 != nil || e2 != nil {
			return 0, false
		}
		sum += u + st
	}
	return sum, true
}
