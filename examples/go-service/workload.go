package main

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log"
	"math"
	"math/rand"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"
)

// The workload: each worker runs a fixed schedule of "requests" (routes) per cycle,
// paced at a fixed number of cycles per second. Each route calls named work
// functions, each marked //go:noinline so it keeps its own frame in profiles.
// Work sizes are fixed; -cpu-regress scales one function's repetitions, carrying
// the fractional part from call to call so a factor of 1.5 is exact on average.

// Base repetitions per call of each work function (tuned for distinct CPU shares).
var baseReps = map[string]float64{
	"computeChecksum": 22,
	"renderTemplate":  1,
	"parseJSON":       1,
	"sortInventory":   2,
	"compressPayload": 1,
	"buildIndex":      1,
	"scoreResults":    8,
	"auditTrail":      14,
}

// schedule is one cycle of requests, the same for every worker and every cycle
// (-route-mix repeats a route's entries).
var schedule = []string{"/checkout", "/search", "/browse", "/search", "/checkout"}

// routes that -route-regress and -route-mix accept.
var routes = []string{"/checkout", "/search", "/browse"}

// shared, read-only inputs (deterministic).
var (
	checksumBuf []byte     // hashed by computeChecksum
	compressBuf []byte     // compressed by compressPayload
	catalogJSON []byte     // parsed by parseJSON
	catalog     []item     // sorted by sortInventory
	documents   [][]string // indexed by buildIndex
	receiptTmpl *template.Template
	pageTmpl    *template.Template
)

type item struct {
	SKU   string   `json:"sku"`
	Name  string   `json:"name"`
	Price float64  `json:"price"`
	Stock int      `json:"stock"`
	Tags  []string `json:"tags"`
}

func init() {
	rng := rand.New(rand.NewSource(42))
	words := strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima " +
		"mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu " +
		"red orange yellow green blue indigo violet black white grey silver gold copper iron")

	checksumBuf = make([]byte, 16<<10)
	rng.Read(checksumBuf)

	var sb strings.Builder
	for sb.Len() < 24<<10 {
		sb.WriteString(words[rng.Intn(len(words))])
		if rng.Intn(7) == 0 {
			fmt.Fprintf(&sb, " %d\n", rng.Intn(100000))
		} else {
			sb.WriteByte(' ')
		}
	}
	compressBuf = []byte(sb.String())

	catalog = make([]item, 300)
	for i := range catalog {
		catalog[i] = item{
			SKU:   fmt.Sprintf("SKU-%06d", rng.Intn(1000000)),
			Name:  words[rng.Intn(len(words))] + " " + words[rng.Intn(len(words))],
			Price: math.Round(rng.Float64()*10000) / 100,
			Stock: rng.Intn(500),
			Tags:  []string{words[rng.Intn(len(words))], words[rng.Intn(len(words))]},
		}
	}
	var err error
	if catalogJSON, err = json.Marshal(catalog[:120]); err != nil {
		panic(err)
	}

	documents = make([][]string, 40)
	for i := range documents {
		doc := make([]string, 60)
		for j := range doc {
			doc[j] = words[rng.Intn(len(words))]
		}
		documents[i] = doc
	}

	receiptTmpl = template.Must(template.New("receipt").Parse(
		`Order {{.ID}} for {{.Customer}}
{{range .Lines}}  {{printf "%-12s" .SKU}} {{.Name | printf "%-24s"}} {{printf "%8.2f" .Price}} x{{.Stock}}
{{end}}Total: {{printf "%.2f" .Total}}
`))
	pageTmpl = template.Must(template.New("page").Parse(
		`<html><body><h1>{{.Title}}</h1><ul>
{{range .Items}}<li class="{{index .Tags 0}}">{{.Name}} ({{.SKU}}) - {{printf "%.2f" .Price}}{{if gt .Stock 0}} in stock{{end}}</li>
{{end}}</ul></body></html>`))
}

// reps turns a float repetition count into integers, carrying the remainder.
type reps struct {
	perCall float64
	carry   float64
}

func (r *reps) next() int {
	x := r.perCall + r.carry
	n := int(x)
	r.carry = x - float64(n)
	return n
}

// worker holds the per-goroutine state (so workers never share mutable data,
// except in updateCounters, on purpose).
type worker struct {
	cfg  *config
	reps map[string]*reps
	// routeReps replaces reps inside a route planted with -route-regress.
	routeReps map[string]map[string]*reps
	route     string
	schedule  []string
	alloc     *reps
	fw        *flate.Writer
	out       bytes.Buffer
	sink      uint64
}

func newWorker(cfg *config, baseline bool) *worker {
	w := &worker{cfg: cfg, reps: map[string]*reps{}}
	for fn, base := range baseReps {
		f := cfg.factor(fn)
		if baseline {
			f = 1
		}
		w.reps[fn] = &reps{perCall: base * f}
	}
	w.routeReps = map[string]map[string]*reps{}
	w.schedule = schedule
	if !baseline {
		for route, fns := range cfg.routeRegress {
			m := map[string]*reps{}
			for fn, base := range baseReps {
				rf, ok := fns[fn]
				if !ok {
					rf = 1
				}
				m[fn] = &reps{perCall: base * cfg.factor(fn) * rf}
			}
			w.routeReps[route] = m
		}
		w.schedule = nil
		for _, route := range schedule {
			n := 1
			if m, ok := cfg.routeMix[route]; ok {
				n = int(m)
			}
			for i := 0; i < n; i++ {
				w.schedule = append(w.schedule, route)
			}
		}
	}
	af := cfg.allocRegress
	if baseline {
		af = 1
	}
	w.alloc = &reps{perCall: af}
	fw, err := flate.NewWriter(&w.out, 5)
	if err != nil {
		panic(err)
	}
	w.fw = fw
	return w
}

// rep is the repetition counter of a work function in the route being served.
func (w *worker) rep(fn string) *reps {
	if m, ok := w.routeReps[w.route]; ok {
		return m[fn]
	}
	return w.reps[fn]
}

// serve runs one request of a route, with the route as a pprof label.
func (w *worker) serve(ctx context.Context, route string, extras bool) {
	w.route = route
	pprof.Do(ctx, pprof.Labels("route", route), func(ctx context.Context) {
		switch route {
		case "/checkout":
			handleCheckout(w, extras)
		case "/search":
			handleSearch(w)
		case "/browse":
			handleBrowse(w)
		}
	})
}

// cycle runs the fixed schedule once. extras enables the planted -new-func and
// -lock-contention work (off during calibration).
func (w *worker) cycle(ctx context.Context, extras bool) {
	for _, route := range w.schedule {
		w.serve(ctx, route, extras)
	}
}

//go:noinline
func handleCheckout(w *worker, extras bool) {
	sum := computeChecksum(w, checksumBuf)
	w.sink += uint64(sum[0])
	renderTemplate(w, receiptTmpl, receiptData())
	if extras && w.cfg.newFunc {
		w.sink += auditTrail(w, checksumBuf)
	}
	if extras && w.cfg.lockContention {
		updateCounters("/checkout", 64, 0)
	}
}

//go:noinline
func handleSearch(w *worker) {
	items := parseJSON(w, catalogJSON)
	idx := buildIndex(w, documents)
	scores := scoreResults(w, items, len(idx))
	sorted := sortInventory(w, catalog)
	w.sink += uint64(len(sorted)) + uint64(scores)
}

//go:noinline
func handleBrowse(w *worker) {
	renderTemplate(w, pageTmpl, pageData())
	w.sink += uint64(compressPayload(w, compressBuf))
}

func receiptData() interface{} {
	total := 0.0
	for _, it := range catalog[:40] {
		total += it.Price * float64(it.Stock%5+1)
	}
	return struct {
		ID, Customer string
		Lines        []item
		Total        float64
	}{"A-1042", "Jane Doe", catalog[:40], total}
}

func pageData() interface{} {
	return struct {
		Title string
		Items []item
	}{"Catalog", catalog[40:120]}
}

// computeChecksum hashes a buffer with SHA-256; its time lands in crypto/sha256.block.
//
//go:noinline
func computeChecksum(w *worker, buf []byte) [32]byte {
	var sum [32]byte
	n := w.rep("computeChecksum").next()
	for i := 0; i < n; i++ {
		h := sha256.New()
		h.Write(sum[:])
		h.Write(buf)
		h.Sum(sum[:0])
	}
	return sum
}

// renderTemplate executes a text/template (time in text/template, reflect, fmt).
//
//go:noinline
func renderTemplate(w *worker, t *template.Template, data interface{}) int {
	n := w.rep("renderTemplate").next()
	size := 0
	for i := 0; i < n; i++ {
		w.out.Reset()
		if err := t.Execute(&w.out, data); err != nil {
			log.Fatalf("template: %v", err)
		}
		size += w.out.Len()
	}
	return size
}

// parseJSON decodes the catalogue (time in encoding/json; allocates).
//
//go:noinline
func parseJSON(w *worker, data []byte) []item {
	n := w.rep("parseJSON").next()
	var items []item
	for i := 0; i < n; i++ {
		items = nil
		if err := json.Unmarshal(data, &items); err != nil {
			log.Fatalf("json: %v", err)
		}
	}
	return items
}

// sortInventory sorts a copy of the catalogue by price, then SKU.
//
//go:noinline
func sortInventory(w *worker, in []item) []item {
	n := w.rep("sortInventory").next()
	out := make([]item, len(in))
	for i := 0; i < n; i++ {
		copy(out, in)
		sort.Slice(out, func(a, b int) bool {
			if out[a].Price != out[b].Price {
				return out[a].Price < out[b].Price
			}
			return out[a].SKU < out[b].SKU
		})
	}
	return out
}

// compressPayload deflates a text buffer (time in compress/flate).
//
//go:noinline
func compressPayload(w *worker, buf []byte) int {
	n := w.rep("compressPayload").next()
	size := 0
	for i := 0; i < n; i++ {
		w.out.Reset()
		w.fw.Reset(&w.out)
		if _, err := w.fw.Write(buf); err != nil {
			log.Fatalf("flate: %v", err)
		}
		if err := w.fw.Close(); err != nil {
			log.Fatalf("flate: %v", err)
		}
		size += w.out.Len()
	}
	return size
}

type posting struct {
	doc, pos int
	token    []byte
}

// buildIndex builds an inverted index; it is the allocation-heavy function
// (-alloc-regress multiplies its token allocations).
//
//go:noinline
func buildIndex(w *worker, docs [][]string) map[string][]*posting {
	n := w.rep("buildIndex").next()
	var idx map[string][]*posting
	for r := 0; r < n; r++ {
		idx = make(map[string][]*posting)
		for d, doc := range docs {
			for p, word := range doc {
				k := w.alloc.next()
				var tok []byte
				for j := 0; j < k; j++ {
					tok = make([]byte, len(word), len(word)+8)
					copy(tok, word)
				}
				idx[word] = append(idx[word], &posting{doc: d, pos: p, token: tok})
			}
		}
	}
	return idx
}

// scoreResults is plain arithmetic: its time is its own (flat) time.
//
//go:noinline
func scoreResults(w *worker, items []item, terms int) int {
	n := w.rep("scoreResults").next()
	acc := 0.0
	for r := 0; r < n; r++ {
		for i := range items {
			x := items[i].Price + float64(items[i].Stock+terms+r)
			for k := 0; k < 40; k++ {
				x = math.Sqrt(x*x+float64(k)) * 0.999
			}
			acc += x
		}
	}
	return int(acc) & 0xffff
}

// auditTrail is the function added by -new-func: an FNV-1a pass over a buffer,
// all flat time in main.auditTrail.
//
//go:noinline
func auditTrail(w *worker, buf []byte) uint64 {
	n := w.rep("auditTrail").next()
	h := uint64(14695981039346656037)
	for r := 0; r < n; r++ {
		for _, b := range buf {
			h ^= uint64(b)
			h *= 1099511628211
		}
	}
	return h
}

// startWorkload starts the workers (and the planted background regressions) and
// returns a function that waits for them to stop once ctx is done.
func startWorkload(ctx context.Context, cfg *config, rate float64) (wait func()) {
	var wg sync.WaitGroup
	period := time.Duration(float64(time.Second) / rate)
	for i := 0; i < cfg.workers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			runWorker(ctx, newWorker(cfg, false), period, time.Duration(i)*period/time.Duration(cfg.workers))
		}(i)
	}
	startRegressions(ctx, cfg, &wg)
	return wg.Wait
}

// runWorker runs one cycle per period, at fixed times (no drift). If it falls
// behind by more than a second (an overloaded machine), it drops the backlog
// rather than catching up, so CPU use stays bounded by one core per worker.
func runWorker(ctx context.Context, w *worker, period, offset time.Duration) {
	timer := time.NewTimer(offset)
	defer timer.Stop()
	next := time.Now().Add(offset)
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		w.cycle(ctx, true)
		next = next.Add(period)
		now := time.Now()
		if now.Sub(next) > time.Second {
			next = now
		}
		timer.Reset(time.Until(next))
	}
}

// calibrate measures the CPU cost of one baseline cycle (no planted regressions)
// and returns the per-worker rate that makes the baseline use cfg.load cores.
// A candidate started with the same -rate does the same number of cycles, so its
// planted regressions show as extra CPU, as a real regression would.
func calibrate(cfg *config) float64 {
	w := newWorker(cfg, true)
	ctx := context.Background()
	for i := 0; i < 3; i++ { // warm up
		w.cycle(ctx, false)
	}
	// Total CPU over all measured cycles (GC included), not the fastest batch.
	const n = 40
	start := cpuTime()
	for i := 0; i < n; i++ {
		w.cycle(ctx, false)
	}
	best := (cpuTime() - start) / n
	if best <= 0 {
		best = time.Millisecond
	}
	rate := cfg.load / float64(cfg.workers) / best.Seconds()
	log.Printf("calibration: %.2f ms CPU per cycle", float64(best)/float64(time.Millisecond))
	return rate
}
