// Turns a results folder of bench/run.sh or bench/peers.sh (*.jsonl, one run per line) into
// Markdown tables: node bench/summarize.mjs bench/results/<stamp>
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node bench/summarize.mjs RESULTS_DIR');
  process.exit(2);
}

const kilo = (v) => (v === undefined || v < 0 ? '' : v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : `${(v / 1e3).toFixed(1)}k`);
const ms = (v) => (v === undefined ? '' : (v / 1000).toFixed(2));
const num = (v, digits = 1) => (v === undefined || v < 0 ? '' : Number(v).toFixed(digits));

// The harness's wsload reports no percentage; ours does.
const deliveredPct = (r) =>
  r.delivered_pct ?? (r.expected_deliveries_per_s ? (100 * r.delivered_per_s) / r.expected_deliveries_per_s : undefined);

// One table per kind of run: which columns say what matters for it.
const layouts = {
  load: [
    ['server', (r) => r.peer ?? 'atrium'],
    ['run', (r) => r.label],
    ['sent/s', (r) => kilo(r.sent_per_s)],
    ['expected/s', (r) => kilo(r.expected_deliveries_per_s)],
    ['delivered/s', (r) => kilo(r.delivered_per_s)],
    ['delivered %', (r) => num(deliveredPct(r))],
    ['p50 ms', (r) => ms(r.p50_us)],
    ['p99 ms', (r) => ms(r.p99_us)],
    ['max ms', (r) => ms(r.max_us)],
    ['lines/frame', (r) => num(r.lines_per_frame)],
    ['server CPU %', (r) => num(r.server_cpu_pct)],
    ['generator CPU %', (r) => num(r.loadgen_cpu_pct)],
    ['errors', (r) => r.server_errors ?? ''],
  ],
  idle: [
    ['server', (r) => r.peer ?? 'atrium'],
    ['clients', (r) => r.alive ?? r.clients],
    ['RSS before KiB', (r) => r.rss_before_kb ?? r.server_rss_before_kb],
    ['RSS after KiB', (r) => r.rss_after_kb ?? r.server_rss_after_kb ?? r.server_rss_kb],
    ['bytes/connection', (r) => num(r.bytes_per_conn, 0)],
  ],
  state: [
    ['server', (r) => r.peer ?? 'atrium'],
    ['run', (r) => r.label ?? r.run],
    ['clients', (r) => r.alive ?? r.clients],
    ['moves/s', (r) => kilo(r.sent_per_s)],
    ['patches/s', (r) => kilo(r.patches_per_s ?? r.delivered_per_s)],
    ['patch MB/s', (r) => num(r.patch_mbytes_per_s ?? r.recv_mbytes_per_s)],
    ['received MB/s', (r) => num(r.recv_mbytes_per_s)],
    ['p50 ms', (r) => ms(r.p50_us)],
    ['p99 ms', (r) => ms(r.p99_us)],
    ['server CPU %', (r) => num(r.server_cpu_pct)],
    ['generator CPU %', (r) => num(r.loadgen_cpu_pct)],
    ['errors', (r) => r.server_errors ?? ''],
  ],
  rooms: [
    ['run', (r) => r.label],
    ['RSS before KiB', (r) => r.rss_before_kb],
    ['connected KiB', (r) => r.rss_connected_kb],
    ['joined KiB', (r) => r.rss_joined_kb],
    ['delivered/s', (r) => kilo(r.delivered_per_s)],
    ['delivered %', (r) => num(r.delivered_pct)],
    ['p99 ms', (r) => ms(r.p99_us)],
    ['server CPU %', (r) => num(r.server_cpu_pct)],
  ],
};

function layoutOf(row) {
  if (row.mode === 'idle') return 'idle';
  if (row.mode === 'state' || String(row.label ?? '').startsWith('state-')) return 'state';
  if (row.mode === 'rooms') return 'rooms';
  return 'load';
}

const tables = new Map();
for (const file of readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort()) {
  for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let row;
    try {
      row = JSON.parse(line);
    } catch {
      continue;
    }
    if (row.error) continue;
    const key = `${file.replace(/\.jsonl$/, '')} (${layoutOf(row)})`;
    if (!tables.has(key)) tables.set(key, { layout: layouts[layoutOf(row)], rows: [] });
    tables.get(key).rows.push(row);
  }
}

for (const [name, { layout, rows }] of tables) {
  console.log(`\n### ${name}\n`);
  console.log(`| ${layout.map(([h]) => h).join(' | ')} |`);
  console.log(`|${layout.map(() => '--:').join('|')}|`);
  for (const row of rows) console.log(`| ${layout.map(([, f]) => f(row)).join(' | ')} |`);
}
