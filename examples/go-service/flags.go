package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// workFuncs are the names accepted by -cpu-regress (with or without "main.").
var workFuncs = []string{
	"computeChecksum",
	"renderTemplate",
	"parseJSON",
	"sortInventory",
	"compressPayload",
	"buildIndex",
	"scoreResults",
	"auditTrail",
}

type config struct {
	pprofAddr     string
	workers       int
	load          float64
	rate          float64
	calibrateOnly bool
	duration      time.Duration
	mutexFraction int
	blockRate     int

	cpuRegress     map[string]float64 // work function -> factor
	newFunc        bool
	allocRegress   float64
	goroutineLeak  int
	heapRetainMB   int
	heapLeakKB     int
	lockContention bool
	routeRegress   map[string]map[string]float64 // route -> work function -> factor, in that route only
	routeMix       map[string]float64            // route -> times it is served per scheduled request
}

// factor returns the -cpu-regress factor for a work function (1 if none).
func (c *config) factor(fn string) float64 {
	if f, ok := c.cpuRegress[fn]; ok {
		return f
	}
	return 1
}

func (c *config) describeRegressions() string {
	var parts []string
	names := make([]string, 0, len(c.cpuRegress))
	for fn := range c.cpuRegress {
		names = append(names, fn)
	}
	sort.Strings(names)
	for _, fn := range names {
		parts = append(parts, fmt.Sprintf("cpu-regress %s=%g", fn, c.cpuRegress[fn]))
	}
	if c.newFunc {
		parts = append(parts, "new-func auditTrail")
	}
	if c.allocRegress != 1 {
		parts = append(parts, fmt.Sprintf("alloc-regress %g", c.allocRegress))
	}
	if c.goroutineLeak > 0 {
		parts = append(parts, fmt.Sprintf("goroutine-leak %d/s", c.goroutineLeak))
	}
	if c.heapRetainMB > 0 {
		parts = append(parts, fmt.Sprintf("heap-retain %d MB", c.heapRetainMB))
	}
	if c.lockContention {
		parts = append(parts, "lock-contention")
	}
	for route, fns := range c.routeRegress {
		for _, fn := range sortedKeys(fns) {
			parts = append(parts, fmt.Sprintf("route-regress %s:%s=%g", route, fn, fns[fn]))
		}
	}
	for _, r := range sortedKeys(c.routeMix) {
		parts = append(parts, fmt.Sprintf("route-mix %s=%g", r, c.routeMix[r]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// regressFlag collects -cpu-regress FUNC=FACTOR (repeatable, or comma-separated).
type regressFlag map[string]float64

func (r regressFlag) String() string {
	var parts []string
	for k, v := range r {
		parts = append(parts, fmt.Sprintf("%s=%g", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (r regressFlag) Set(s string) error {
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, val, ok := strings.Cut(item, "=")
		if !ok {
			return fmt.Errorf("want FUNC=FACTOR, got %q", item)
		}
		name = strings.TrimPrefix(strings.TrimSpace(name), "main.")
		if !isWorkFunc(name) {
			return fmt.Errorf("unknown work function %q in -cpu-regress (valid: %s)",
				name, strings.Join(workFuncs, ", "))
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 || f > 100 {
			return fmt.Errorf("factor for %s must be a number in (0, 100], got %q", name, val)
		}
		r[name] = f
	}
	return nil
}

// routeFlag collects ROUTE=N for -route-regress and -route-mix (repeatable, or comma-separated).
type routeFlag struct {
	m       map[string]float64
	fm      map[string]map[string]float64 // with perFunc: ROUTE:FUNC=N
	name    string
	whole   bool // N must be a whole number (a count of requests)
	perFunc bool
}

func (r routeFlag) String() string {
	var parts []string
	for _, k := range sortedKeys(r.m) {
		parts = append(parts, fmt.Sprintf("%s=%g", k, r.m[k]))
	}
	for route, fns := range r.fm {
		for _, fn := range sortedKeys(fns) {
			parts = append(parts, fmt.Sprintf("%s:%s=%g", route, fn, fns[fn]))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (r routeFlag) Set(s string) error {
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		route, val, ok := strings.Cut(item, "=")
		if !ok {
			return fmt.Errorf("want ROUTE=N in -%s, got %q", r.name, item)
		}
		route = strings.TrimSpace(route)
		fn := ""
		if r.perFunc {
			var ok bool
			route, fn, ok = strings.Cut(route, ":")
			fn = strings.TrimPrefix(fn, "main.")
			if !ok || !isWorkFunc(fn) {
				return fmt.Errorf("want ROUTE:FUNC=FACTOR in -%s with FUNC one of %s, got %q", r.name, strings.Join(workFuncs, ", "), item)
			}
		}
		if !isRoute(route) {
			return fmt.Errorf("unknown route %q in -%s (valid: %s)", route, r.name, strings.Join(routes, ", "))
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || math.IsNaN(f) || f <= 0 || f > 100 || (r.whole && f != math.Trunc(f)) {
			return fmt.Errorf("-%s %s: want a number in (0, 100]%s, got %q", r.name, route,
				map[bool]string{true: ", whole", false: ""}[r.whole], val)
		}
		if r.perFunc {
			if r.fm[route] == nil {
				r.fm[route] = map[string]float64{}
			}
			r.fm[route][fn] = f
		} else {
			r.m[route] = f
		}
	}
	return nil
}

func isRoute(route string) bool {
	for _, r := range routes {
		if r == route {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func isWorkFunc(name string) bool {
	for _, w := range workFuncs {
		if w == name {
			return true
		}
	}
	return false
}

func parseFlags(args []string) (*config, error) {
	cfg := &config{
		cpuRegress:   map[string]float64{},
		routeRegress: map[string]map[string]float64{},
		routeMix:     map[string]float64{},
	}
	fs := flag.NewFlagSet("go-service", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.pprofAddr, "pprof-addr", "127.0.0.1:6060", "listen address of the pprof endpoints (port 0: any free port)")
	fs.IntVar(&cfg.workers, "workers", 2, "number of worker goroutines")
	fs.Float64Var(&cfg.load, "load", 0.5, "target CPU use of the baseline workload, in cores (spread over the workers)")
	fs.Float64Var(&cfg.rate, "rate", 0, "cycles per second per worker (0: calibrate at start-up to reach -load)")
	fs.BoolVar(&cfg.calibrateOnly, "calibrate", false, "print the calibrated -rate for -load and -workers on stdout and exit")
	fs.DurationVar(&cfg.duration, "duration", 0, "exit after this long (0: run until SIGINT/SIGTERM)")
	fs.IntVar(&cfg.mutexFraction, "mutex-fraction", 5, "runtime.SetMutexProfileFraction (report 1 in N contention events)")
	fs.IntVar(&cfg.blockRate, "block-rate", 10000, "runtime.SetBlockProfileRate (one sample per N ns blocked)")
	fs.Var(regressFlag(cfg.cpuRegress), "cpu-regress", "FUNC=FACTOR: the work function does FACTOR times its work (repeatable)")
	fs.BoolVar(&cfg.newFunc, "new-func", false, "add a new function main.auditTrail to the /checkout route")
	fs.Float64Var(&cfg.allocRegress, "alloc-regress", 1, "FACTOR: main.buildIndex makes FACTOR times its allocations")
	fs.IntVar(&cfg.goroutineLeak, "goroutine-leak", 0, "N: leak N goroutines per second (main.leakyWatcher)")
	fs.IntVar(&cfg.heapRetainMB, "heap-retain", 0, "MB: retain MB of heap in a global (main.cacheFill), grown over ~10s")
	fs.IntVar(&cfg.heapLeakKB, "heap-leak", 0, "KB: retain KB of heap per second for ever in main.retainRecord (a leak)")
	fs.BoolVar(&cfg.lockContention, "lock-contention", false, "contend on a shared mutex in main.updateCounters")
	fs.Var(routeFlag{fm: cfg.routeRegress, name: "route-regress", perFunc: true}, "route-regress", "ROUTE:FUNC=FACTOR: the work function does FACTOR times its work in that route only, e.g. /browse:renderTemplate=3 (repeatable)")
	fs.Var(routeFlag{m: cfg.routeMix, name: "route-mix", whole: true}, "route-mix", "ROUTE=N: serve the route N times wherever the schedule has it once: a traffic-mix change, same code (repeatable)")

	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fs.SetOutput(os.Stderr)
			fmt.Fprintln(os.Stderr, "usage: go-service [flags]")
			fs.PrintDefaults()
			return nil, err
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	switch {
	case cfg.workers < 1 || cfg.workers > 64:
		return nil, fmt.Errorf("-workers must be in 1..64, got %d", cfg.workers)
	case !(cfg.load > 0 && cfg.load <= 64):
		return nil, fmt.Errorf("-load must be in (0, 64], got %g", cfg.load)
	case cfg.rate < 0 || math.IsNaN(cfg.rate) || math.IsInf(cfg.rate, 0):
		return nil, fmt.Errorf("-rate must be >= 0, got %g", cfg.rate)
	case cfg.duration < 0:
		return nil, fmt.Errorf("-duration must be >= 0, got %s", cfg.duration)
	case !(cfg.allocRegress > 0 && cfg.allocRegress <= 100):
		return nil, fmt.Errorf("-alloc-regress must be in (0, 100], got %g", cfg.allocRegress)
	case cfg.goroutineLeak < 0 || cfg.goroutineLeak > 10000:
		return nil, fmt.Errorf("-goroutine-leak must be in 0..10000, got %d", cfg.goroutineLeak)
	case cfg.heapLeakKB < 0 || cfg.heapLeakKB > 1<<20:
		return nil, fmt.Errorf("-heap-leak must be in 0..1048576 KB per second, got %d", cfg.heapLeakKB)
	case cfg.heapRetainMB < 0 || cfg.heapRetainMB > 4096:
		return nil, fmt.Errorf("-heap-retain must be in 0..4096 MB, got %d", cfg.heapRetainMB)
	case cfg.mutexFraction < 0:
		return nil, fmt.Errorf("-mutex-fraction must be >= 0, got %d", cfg.mutexFraction)
	case cfg.blockRate < 0:
		return nil, fmt.Errorf("-block-rate must be >= 0, got %d", cfg.blockRate)
	}
	return cfg, nil
}
