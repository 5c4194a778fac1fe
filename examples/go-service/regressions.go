package main

import (
	"context"
	"log"
	"runtime/pprof"
	"sync"
	"time"
)

// startRegressions starts the background parts of the planted regressions.
func startRegressions(ctx context.Context, cfg *config, wg *sync.WaitGroup) {
	// Every service has a little lock contention: two flushers that meet on the counters
	// mutex now and then. -lock-contention makes it a storm that holds the lock.
	flushers, hold := 2, time.Duration(0)
	if cfg.lockContention {
		flushers, hold = 2*cfg.workers, 500*time.Microsecond
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		pprof.Do(ctx, pprof.Labels("route", "/internal/counters"), func(ctx context.Context) {
			counterStorm(ctx, flushers, hold)
		})
	}()
	if cfg.goroutineLeak > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			spawnWatchers(ctx, cfg.goroutineLeak)
		}()
	}
	if cfg.heapLeakKB > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			leakRecords(ctx, cfg.heapLeakKB)
		}()
	}
	if cfg.heapRetainMB > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cacheFill(ctx, cfg.heapRetainMB)
		}()
	}
}

// --- -lock-contention --------------------------------------------------------

var counters = struct {
	mu sync.Mutex
	m  map[string]int64
}{m: map[string]int64{}}

var counterKeys = []string{
	"requests", "bytes", "errors", "latency_bucket_1", "latency_bucket_2", "latency_bucket_3",
	"latency_bucket_4", "cache_hits", "cache_misses", "retries",
}

// updateCounters updates shared counters under one mutex: the contended lock.
// With hold > 0 it also "flushes" them while still holding the lock (a sleep
// standing in for a slow write), the classic cause of contention, which costs
// wall time but almost no CPU.
//
//go:noinline
func updateCounters(route string, n int, hold time.Duration) {
	counters.mu.Lock()
	for i := 0; i < n; i++ {
		counters.m[counterKeys[i%len(counterKeys)]]++
	}
	counters.m[route]++
	if hold > 0 {
		time.Sleep(hold)
	}
	counters.mu.Unlock()
}

// counterStorm wakes k flusher goroutines together every 20 ms; they all take the
// counters mutex at once (and hold it for hold while "flushing"), so the mutex and
// block profiles always have content (for well under 1% of a core).
func counterStorm(ctx context.Context, k int, hold time.Duration) {
	chans := make([]chan struct{}, k)
	var wg sync.WaitGroup
	for i := range chans {
		chans[i] = make(chan struct{}, 1)
		wg.Add(1)
		go func(ch chan struct{}) {
			defer wg.Done()
			counterFlusher(ctx, ch, hold)
		}(chans[i])
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
			for _, ch := range chans {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
	}
}

//go:noinline
func counterFlusher(ctx context.Context, tick <-chan struct{}, hold time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			updateCounters("/internal/counters", 100, hold)
		}
	}
}

// --- -goroutine-leak -----------------------------------------------------------

// leakCh is never sent on nor closed: whoever receives from it waits forever.
var leakCh = make(chan struct{})

// spawnWatchers leaks n goroutines per second until ctx is done.
func spawnWatchers(ctx context.Context, n int) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	total := 0
	for {
		for i := 0; i < n; i++ {
			go leakyWatcher(total)
			total++
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// leakyWatcher blocks forever on a channel nobody sends on (the leak).
//
//go:noinline
func leakyWatcher(id int) {
	<-leakCh
	log.Printf("watcher %d woke up", id) // never happens
}

// --- -heap-retain ------------------------------------------------------------

// cache is retained for the life of the process.
var (
	cacheMu sync.Mutex
	cache   [][]byte
)

// cacheFill grows the retained cache to mb megabytes in 100 steps over ~10 s.
//
//go:noinline
func cacheFill(ctx context.Context, mb int) {
	const steps = 100
	total := mb << 20
	chunk := total / steps
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for filled := 0; filled < total; {
		size := chunk
		if total-filled < size || size == 0 {
			size = total - filled
		}
		b := make([]byte, size)
		for i := range b { // touch every byte: resident, not just reserved
			b[i] = byte(i)
		}
		cacheMu.Lock()
		cache = append(cache, b)
		cacheMu.Unlock()
		filled += size
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	log.Printf("cacheFill: retaining %d MB", mb)
}

// --- -heap-leak ----------------------------------------------------------------

// auditLog keeps every record it is given and never lets go: the leak.
var (
	auditMu  sync.Mutex
	auditLog [][]byte
)

// leakRecords retains kb kilobytes per second, in ten records a second, until ctx is done
// (or 4 GiB are held, so a forgotten process cannot take the machine).
func leakRecords(ctx context.Context, kb int) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	held := 0
	for held < 4<<30 {
		held += retainRecord(kb << 10 / 10)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// retainRecord allocates a record of size bytes and keeps it in auditLog for ever.
//
//go:noinline
func retainRecord(size int) int {
	b := make([]byte, size)
	for i := 0; i < len(b); i += 512 {
		b[i] = byte(i)
	}
	auditMu.Lock()
	auditLog = append(auditLog, b)
	auditMu.Unlock()
	return size
}

// --- baseline retained heap ----------------------------------------------------

// sessions is a fixed in-memory table every process keeps, so the in-use heap
// profile has a stable baseline (main.warmCache) besides the runtime's own.
var sessions map[int][]byte

// warmCache fills the session table once at start-up (about 8 MB in 32768
// entries of 256 bytes).
//
//go:noinline
func warmCache() {
	const entries, size = 32768, 256
	sessions = make(map[int][]byte, entries)
	for i := 0; i < entries; i++ {
		b := make([]byte, size)
		b[0] = byte(i)
		sessions[i] = b
	}
}
