#!/usr/bin/env node
// Example Node.js service for Profile Gate: a paced workload of named functions, with pprof
// endpoints from @datadog/pprof (the package most Node services use for this):
//   GET /debug/pprof/profile?seconds=N   wall-clock CPU profile (sample/count, wall/nanoseconds)
//   GET /debug/pprof/heap                sampled live heap (inuse_objects, inuse_space)
// Nothing else is served: Node has no goroutine, allocs, mutex or block profile.
//
//   node server.js [--pprof-addr 127.0.0.1:0] [--load 0.25 | --rate R] [--cpu-regress FUNC=FACTOR]...
//   node server.js --calibrate [--load 0.25]   prints the --rate that makes --load, and exits
//
// The first line on stdout is "pprof listening on HOST:PORT". Planted regressions change the
// work a cycle does, not how often cycles run, so they cost extra CPU as real ones do.
'use strict';

const http = require('node:http');
const v8 = require('node:v8');

// Interpreted and baseline code only. With V8's optimising compiler on, this profiler put
// samples on the wrong functions as the JIT moved code: measured here, with computeChecksum
// made 3x slower, parseRecords rose 26x in the profile and computeChecksum fell, and one
// process's windows disagreed on computeChecksum's share from 6% to 22%. An example whose
// profiles must name the planted function cannot have that; a real service may, and no
// comparison can be more right than the profiles it reads.
v8.setFlagsFromString('--no-opt');
const pprof = require('@datadog/pprof');

const WORK = ['computeChecksum', 'renderPage', 'parseRecords', 'sortInventory'];

function usage(message) {
  process.stderr.write(`node-service: ${message}\n` +
    'usage: node server.js [--pprof-addr HOST:PORT] [--load CORES | --rate R] [--cpu-regress FUNC=FACTOR]... | --calibrate [--load CORES]\n' +
    `FUNC is one of ${WORK.join(', ')}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const cfg = { addr: '127.0.0.1:0', load: 0.25, rate: 0, regress: {} };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--calibrate') {
      cfg.calibrateOnly = true;
      continue;
    }
    const value = argv[i + 1];
    if (value === undefined) usage(`${flag} needs a value`);
    i++;
    if (flag === '--pprof-addr') {
      cfg.addr = value;
    } else if (flag === '--load') {
      cfg.load = Number(value);
      if (!(cfg.load > 0 && cfg.load < 1)) usage(`--load ${value}: a fraction of one core, 0 < L < 1`);
    } else if (flag === '--rate') {
      cfg.rate = Number(value);
      if (!(cfg.rate > 0)) usage(`--rate ${value}: requests per second, above 0`);
    } else if (flag === '--cpu-regress') {
      for (const part of value.split(',')) {
        const [name, factor] = part.split('=');
        const f = Number(factor);
        if (!WORK.includes(name) || !(f > 0)) usage(`--cpu-regress ${part}: write FUNC=FACTOR`);
        cfg.regress[name] = f;
      }
    } else {
      usage(`unknown flag ${flag}`);
    }
  }
  return cfg;
}

const cfg = parseArgs(process.argv.slice(2));
const factor = (name) => cfg.regress[name] || 1;

// The work, each a named function so that profiles show it. Sizes are in rounds.
function computeChecksum(data, rounds) {
  let h = 0x811c9dc5;
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < data.length; i++) {
      h ^= data[i];
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  }
  return h;
}

function renderPage(items, rounds) {
  let html = '';
  for (let r = 0; r < rounds; r++) {
    html = '<ul>';
    for (const it of items) html += `<li id="${it.id}">${it.name}: ${it.price.toFixed(2)}</li>`;
    html += '</ul>';
  }
  return html.length;
}

function parseRecords(text, rounds) {
  let n = 0;
  for (let r = 0; r < rounds; r++) n += JSON.parse(text).length;
  return n;
}

function sortInventory(items, rounds) {
  let first = 0;
  for (let r = 0; r < rounds; r++) {
    const copy = items.slice();
    copy.sort((a, b) => a.price - b.price || a.id - b.id);
    first += copy[0].id;
  }
  return first;
}

const data = new Uint8Array(4096).map((_, i) => (i * 31) & 0xff);
const items = Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item-${i}`, price: (i * 7919) % 1000 / 10 }));
const text = JSON.stringify(items.slice(0, 100));

// One request's worth of work: the base rounds of each function, times its factor.
function handleRequest() {
  const rounds = (name, base) => Math.max(1, Math.round(base * factor(name)));
  return computeChecksum(data, rounds('computeChecksum', 12)) +
    renderPage(items, rounds('renderPage', 14)) +
    parseRecords(text, rounds('parseRecords', 5)) +
    sortInventory(items, rounds('sortInventory', 6));
}

// Paced: requests arrive at a fixed rate (--rate), or one calibrated at start so that the
// unregressed service uses about --load of a core. Processes compared with each other should
// share one --rate: each calibrates a little differently. Calibrating also warms the JIT.
function calibrate() {
  const saved = cfg.regress;
  cfg.regress = {};
  const start = process.hrtime.bigint();
  let n = 0;
  // A second of work: the JIT reaches its steady state before anything is measured.
  while (process.hrtime.bigint() - start < 1_000_000_000n) {
    handleRequest();
    n++;
  }
  cfg.regress = saved;
  const perRequest = 1.0 / n;
  return cfg.load / perRequest;
}

const calibrated = calibrate();
if (cfg.calibrateOnly) {
  process.stdout.write(`${calibrated.toFixed(3)}\n`);
  process.exit(0);
}
const rate = cfg.rate || calibrated;
const tick = 10; // ms
let sink = 0;
let due = 0;
setInterval(() => {
  due += rate * tick / 1000;
  while (due >= 1) {
    sink ^= handleRequest();
    due -= 1;
  }
}, tick);

pprof.heap.start(512 * 1024, 64);

let profiling = false;
async function serve(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const send = (status, body, type = 'text/plain') => {
    res.writeHead(status, { 'Content-Type': type });
    res.end(body);
  };
  try {
    if (url.pathname === '/debug/pprof/profile') {
      const seconds = Number(url.searchParams.get('seconds') || '30');
      if (!(seconds > 0 && seconds <= 3600)) return send(400, 'seconds must be between 0 and 3600\n');
      if (profiling) return send(500, 'a CPU profile is already being taken\n');
      profiling = true;
      try {
        const profile = await pprof.time.profile({ durationMillis: seconds * 1000 });
        return send(200, await pprof.encode(profile), 'application/octet-stream');
      } finally {
        profiling = false;
      }
    }
    if (url.pathname === '/debug/pprof/heap') {
      return send(200, await pprof.encode(pprof.heap.profile()), 'application/octet-stream');
    }
    return send(404, `${url.pathname}: not served (this service has /debug/pprof/profile and /debug/pprof/heap)\n`);
  } catch (e) {
    return send(500, `profiling failed: ${e}\n`);
  }
}

const [host, port] = (() => {
  const at = cfg.addr.lastIndexOf(':');
  if (at < 0) usage(`--pprof-addr ${cfg.addr}: write HOST:PORT`);
  return [cfg.addr.slice(0, at), Number(cfg.addr.slice(at + 1))];
})();
const server = http.createServer((req, res) => { serve(req, res); });
server.listen(port, host, () => {
  const a = server.address();
  process.stdout.write(`pprof listening on ${a.address}:${a.port}\n`);
  process.stderr.write(`node-service: ${rate.toFixed(1)} requests/s (calibrated for --load ${cfg.load}: ${calibrated.toFixed(1)})\n`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => { server.close(); process.exit(0); });
}
// Keep the result alive so the work is not optimised away.
process.on('exit', () => { if (sink === 0.5) console.log(sink); });
