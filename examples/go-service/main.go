// Command go-service is the example service for Profile Gate.
//
// It serves net/http/pprof on a dedicated mux (loopback by default) and runs a
// steady, paced synthetic workload through a handful of named, non-inlined
// functions, so that CPU, allocation, heap, goroutine, mutex and block
// profiles have stable shapes from run to run. Flags plant regressions of
// known size (see README.md).
//
// Only the first line of stdout is written ("pprof listening on ADDR");
// everything else goes to stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	log.SetOutput(os.Stderr)
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("go-service: ")

	cfg, err := parseFlags(args)
	if err != nil { // bad flags or values: exit status 2
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "go-service: %v\n", err)
		return 2
	}

	runtime.SetMutexProfileFraction(cfg.mutexFraction)
	runtime.SetBlockProfileRate(cfg.blockRate)
	warmCache()

	if cfg.calibrateOnly {
		rate := calibrate(cfg)
		fmt.Printf("%.3f\n", rate)
		return 0
	}

	ln, err := net.Listen("tcp", cfg.pprofAddr)
	if err != nil {
		log.Printf("listen on %s: %v", cfg.pprofAddr, err)
		return 1
	}
	if host, _, err := net.SplitHostPort(ln.Addr().String()); err == nil {
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			log.Printf("warning: pprof endpoints are exposed on non-loopback address %s", ln.Addr())
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if cfg.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.duration)
		defer cancel()
	}

	srv := &http.Server{
		Handler:           pprofMux(),
		ReadHeaderTimeout: 10 * time.Second,
		// No WriteTimeout: /debug/pprof/...?seconds=N must be allowed to run N seconds.
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	rate := cfg.rate
	if rate <= 0 {
		rate = calibrate(cfg)
	}
	log.Printf("workload: %d workers, %.2f cycles/s each (target load %.2f core), regressions: %s",
		cfg.workers, rate, cfg.load, cfg.describeRegressions())
	done := startWorkload(ctx, cfg, rate)

	// The one line on stdout, printed once the workload runs, so a reader can start
	// capturing right away.
	fmt.Printf("pprof listening on %s\n", ln.Addr())

	status := 0
	select {
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			log.Printf("duration %s elapsed, shutting down", cfg.duration)
		} else {
			log.Printf("signal received, shutting down")
		}
	case err := <-serveErr:
		log.Printf("pprof server: %v", err)
		status = 1
	}
	stop()

	shutdownCtx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// In-flight profile requests (?seconds=N) may outlast the grace period.
		_ = srv.Close()
	}
	done()
	return status
}

// pprofMux registers the net/http/pprof handlers on a mux of their own, so nothing
// else reaches them (and they are not on http.DefaultServeMux).
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	for _, name := range []string{"heap", "allocs", "goroutine", "mutex", "block", "threadcreate"} {
		// pprof.Handler serves ?seconds=N as a delta profile (allocs, heap, mutex,
		// block, goroutine) and ?debug=N as text.
		mux.Handle("/debug/pprof/"+name, pprof.Handler(name))
	}
	return mux
}
