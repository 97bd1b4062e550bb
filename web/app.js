// The demo page: controls, a module worker that runs parfit, and small SVG plots. No framework, no build step.
const $ = (id) => document.getElementById(id);
const isolated = self.crossOriginIsolated === true;
const cores = navigator.hardwareConcurrency || 1;

$('isolation').textContent = isolated
  ? `Cross-origin isolated: fits run on a pool of web workers (this machine reports ${cores} cores).`
  : 'Not cross-origin isolated (the server sends no COOP/COEP headers), so there is no shared memory for ' +
    'workers: everything runs single-threaded. Serve with `cargo xtask serve` for threads.';
if (!isolated) $('isolation').className = 'warn';
for (let n = 1; n <= (isolated ? Math.max(cores, 2) : 1); n++) $('threads').add(new Option(String(n), String(n)));
$('threads').value = String(isolated ? cores : 1);

const cancelFlag = isolated ? new Int32Array(new SharedArrayBuffer(4)) : null;
let worker = null;
let ready = null; // promise of { threads, models } for the current worker
let pending = null; // { resolve, reject, onProgress } of the running job

function startWorker(threads) {
  if (worker) worker.terminate();
  worker = new Worker(new URL('worker.js', import.meta.url), { type: 'module' });
  ready = new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => {
      if (data.type === 'ready') resolve(data);
      else if (data.type === 'progress') pending?.onProgress(data.progress);
      else if (data.type === 'result') { pending?.resolve(data.result); pending = null; }
      else if (data.type === 'error') { (pending ? pending.reject : reject)(new Error(data.message)); pending = null; }
    };
    worker.onerror = (e) => { const err = new Error(e.message || 'worker failed'); (pending ? pending.reject : reject)(err); pending = null; };
  });
  worker.postMessage({ type: 'init', threads, cancel: cancelFlag });
  return ready;
}

let workerThreads = 0;
async function ensureWorker() {
  const threads = Number($('threads').value);
  if (threads !== workerThreads) { workerThreads = threads; await startWorker(threads); }
  return ready;
}

// Run one job in the worker; `onProgress` sees its progress reports.
async function run(workload, { seed, limit, onProgress = () => {} } = {}) {
  const info = await ensureWorker();
  if (cancelFlag) Atomics.store(cancelFlag, 0, 0);
  const result = await new Promise((resolve, reject) => {
    pending = { resolve, reject, onProgress };
    worker.postMessage({ type: 'run', workload, seed, limit });
  });
  return { ...result, pool: info.threads };
}

function cancel() {
  if (cancelFlag) Atomics.store(cancelFlag, 0, 1);
  else if (pending) { // no shared flag to poll: stop the worker itself
    pending.reject(new Error('cancelled')); pending = null; workerThreads = 0; worker.terminate();
  }
}

// ---- plots -------------------------------------------------------------------------------------------------
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];
const fmt = (v) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(2) : String(+v.toPrecision(4)));
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

function ticks(lo, hi, n = 5) {
  const step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n || 1)));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => (hi - lo) / s <= n) || step * 10;
  const out = [];
  for (let t = Math.ceil(lo / nice) * nice; t <= hi + nice * 1e-9; t += nice) out.push(+t.toPrecision(12));
  return out;
}

// series: [{ name, x: [], y: [], dots?: bool }]; logY plots log10 of y, logX log10 of x.
function chart(series, { xlabel = '', ylabel = '', logY = false, logX = false } = {}) {
  const W = 800, H = 320, L = 64, R = 16, T = 12, B = 40;
  const tf = (y) => (logY ? Math.log10(y) : y), tx = (x) => (logX ? Math.log10(x) : x);
  const xs = series.flatMap((s) => s.x.map(tx)).filter(Number.isFinite), ys = series.flatMap((s) => [...s.y, ...(s.lo || []), ...(s.hi || [])].map(tf)).filter(Number.isFinite);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const XT = (t) => L + ((t - x0) / (x1 - x0 || 1)) * (W - L - R), X = (x) => XT(tx(x));
  const legend = Math.min(150, (W - L - R - 20) / series.length); // the names' spacing: all inside the plot
  const Y = (y) => H - B - ((tf(y) - y0) / (y1 - y0 || 1)) * (H - T - B);
  let svg = `<svg viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg" font-size="12">`;
  for (const t of ticks(x0, x1)) svg += `<line x1="${XT(t)}" x2="${XT(t)}" y1="${T}" y2="${H - B}" stroke="#eee"/><text x="${XT(t)}" y="${H - B + 16}" text-anchor="middle">${logX ? '1e' + t : fmt(t)}</text>`;
  for (const t of ticks(y0, y1)) { const y = H - B - ((t - y0) / (y1 - y0 || 1)) * (H - T - B); svg += `<line x1="${L}" x2="${W - R}" y1="${y}" y2="${y}" stroke="#eee"/><text x="${L - 6}" y="${y + 4}" text-anchor="end">${logY ? '1e' + t : fmt(t)}</text>`; }
  svg += `<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">${esc(xlabel)}</text><text x="14" y="${(T + H - B) / 2}" transform="rotate(-90 14 ${(T + H - B) / 2})" text-anchor="middle">${esc(ylabel)}</text>`;
  series.forEach((s, k) => {
    const c = s.color || COLORS[k % COLORS.length];
    const pts = s.x.map((x, i) => [x, s.y[i]]).filter(([x, y]) => Number.isFinite(tf(y)) && Number.isFinite(tx(x)));
    // A band (e.g. quantiles) around the line: the polygon along `hi` and back along `lo`.
    if (s.lo && s.hi) svg += `<polygon fill="${c}" fill-opacity=".18" stroke="none" points="${[...s.x.map((x, i) => [x, s.hi[i]]), ...s.x.map((x, i) => [x, s.lo[i]]).reverse()].map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ')}"/>`;
    if (s.dots) svg += pts.map(([x, y]) => `<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="1.6" fill="${c}" fill-opacity=".45"/>`).join('');
    else svg += `<polyline fill="none" stroke="${c}" stroke-width="1.6" points="${pts.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ')}"/>`;
    svg += `<text x="${L + 10 + legend * k}" y="${T + 14}" fill="${c}">${esc(s.name)}</text>`;
  });
  return svg + '</svg>';
}

function histogram(values, { bins = 40, xlabel = '' } = {}) {
  const sorted = [...values].sort((a, b) => a - b);
  // Clip the far tails (a few counties fit extreme rates) so the bulk is visible.
  const lo = sorted[Math.floor(0.01 * (sorted.length - 1))], hi = sorted[Math.ceil(0.99 * (sorted.length - 1))];
  const width = (hi - lo) / bins || 1, counts = new Array(bins).fill(0);
  for (const v of values) if (v >= lo && v <= hi) counts[Math.min(bins - 1, Math.floor((v - lo) / width))]++;
  const W = 800, H = 280, L = 56, B = 40, T = 12, R = 16, top = Math.max(...counts, 1);
  const bw = (W - L - R) / bins;
  let svg = `<svg viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg" font-size="12">`;
  counts.forEach((c, i) => { const h = (c / top) * (H - T - B); svg += `<rect x="${L + i * bw}" y="${H - B - h}" width="${bw - 1}" height="${h}" fill="#1f77b4"/>`; });
  for (const t of ticks(lo, hi)) svg += `<text x="${L + ((t - lo) / (hi - lo || 1)) * (W - L - R)}" y="${H - B + 16}" text-anchor="middle">${fmt(t)}</text>`;
  for (const t of ticks(0, top, 4)) svg += `<text x="${L - 6}" y="${H - B - (t / top) * (H - T - B) + 4}" text-anchor="end">${t}</text>`;
  return svg + `<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">${esc(xlabel)}</text></svg>`;
}

const table = (head, rows) => `<tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>` +
  rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('');

// ---- the workloads -----------------------------------------------------------------------------------------
const SECTIONS = ['lv', 'dosing', 'robertson', 'counties', 'regions', 'projection', 'wealth'];
const only = (id) => SECTIONS.forEach((s) => { $(s).hidden = s !== id; });

// A fit in the section `id`: data and fitted curves, the best SSE per evaluation, the fitted parameters.
function showFit(id, r, axes) {
  only(id);
  const series = [];
  r.data.forEach((d, k) => series.push({ name: `${d.name} (data)`, x: d.times, y: d.values, dots: true, color: COLORS[k] }));
  r.fitted.forEach((f, k) => series.push({ name: `${f.name} (fitted)`, x: f.times, y: f.values, color: COLORS[k] }));
  $(`${id}-fit`).innerHTML = chart(series, axes);
  $(`${id}-conv`).innerHTML = chart([{ name: 'best SSE', x: r.history.map((h) => h.evaluations), y: r.history.map((h) => h.best_value) }], { xlabel: 'evaluations', ylabel: 'SSE (log10)', logY: true });
  $(`${id}-table`).innerHTML = table(['parameter', 'fitted'], Object.entries(r.x).map(([k, v]) => [k, String(v)]));
}
const showLv = (r) => showFit('lv', r, { xlabel: 't', ylabel: 'population' });
const showDosing = (r) => showFit('dosing', r, { xlabel: 't (h)', ylabel: 'concentration (mg/L)' });
const showRobertson = (r) => showFit('robertson', r, { xlabel: 't (log10)', ylabel: 'concentration', logX: true });
// The workloads that are one fit (parfit fit), and how each is shown.
const FITS = { lv: showLv, dosing: showDosing, robertson: showRobertson };

function showCounties(r, shown = 25) {
  only('counties');
  const rates = r.rows.filter((row) => !row.error).flatMap((row) => row.x);
  $('counties-hist').innerHTML = histogram(rates, { xlabel: 'fitted loss rate (per year), all nine decades, 1–99 % range' });
  const head = [...r.id_columns, ...r.parameters.map((p) => p.replace(' loss rate', '')), r.cost];
  const rows = r.rows.slice(0, shown).map((row) => [...row.ids, ...(row.error ? r.parameters.map(() => '') : row.x.map((v) => v.toFixed(4))), row.value == null ? row.error : fmt(row.value)]);
  $('counties-table').innerHTML = table(head, rows) + (r.rows.length > shown ? `<tr><td colspan="${head.length}">… ${r.rows.length - shown} more</td></tr>` : '');
}

// The regional bootstrap: each parameter's median and 5–95 % range over the replicates, then every replicate.
function showRegions(r) {
  only('regions');
  const fits = r.rows.filter((row) => !row.error);
  const quantile = (xs, q) => { const s = [...xs].sort((a, b) => a - b); const i = q * (s.length - 1), k = Math.floor(i); return s[k] + (i - k) * ((s[k + 1] ?? s[k]) - s[k]); };
  $('regions-summary').innerHTML = table(['parameter', 'median', '5 %', '95 %'], r.parameters.map((p, j) => {
    const xs = fits.map((row) => row.x[j]);
    return xs.length ? [p, fmt(quantile(xs, 0.5)), fmt(quantile(xs, 0.05)), fmt(quantile(xs, 0.95))] : [p, '', '', ''];
  }));
  $('regions-table').innerHTML = table([...r.id_columns, ...r.parameters, r.cost],
    r.rows.map((row) => [...row.ids, ...(row.error ? r.parameters.map(() => '') : row.x.map(fmt)), row.value == null ? row.error : fmt(row.value)]));
}

// A projection (the savings kind, or a model file such as dynamic_lapse.prj): present values, cash flows, policies.
function showProjection(r) {
  only('projection');
  $('projection-note').textContent = `${r.config} (model ${r.model}), model points ${r.model_points}`;
  $('projection-table').innerHTML = table(['present value', 'total'], Object.entries(r.totals).map(([k, v]) => [k, v.toLocaleString('en', { maximumFractionDigits: 0 })]));
  const months = (r.monthly['Net Cashflow'] || []).map((_, t) => t);
  const cf = ['Premiums', 'Claims', 'Expenses', 'Commissions', 'Net Cashflow'].filter((c) => r.monthly[c]);
  $('projection-cf').innerHTML = chart(cf.map((c) => ({ name: c, x: months, y: r.monthly[c] })), { xlabel: 'month', ylabel: 'cash flow' });
  $('projection-pols').innerHTML = chart([{ name: 'policies in force', x: months, y: r.monthly.pols_if || [] }], { xlabel: 'month', ylabel: 'policies' });
}

// Monte Carlo: the statistics table, and for a sweep the median with its 5–95 % band over the last swept
// parameter, one line per value of the first.
function showWealth(r) {
  only('wealth');
  const { columns, rows } = r.summary;
  $('wealth-table').innerHTML = table(columns, rows.map((row) => row.map((c) => (Number.isFinite(Number(c)) ? fmt(Number(c)) : c))));
  const swept = columns.slice(0, columns.indexOf('output'));
  const col = (name) => columns.indexOf(name);
  $('wealth-title').textContent = `Wealth after ${r.periods} periods, ${r.paths.toLocaleString('en')} households, seed ${r.seeds.join(' ')}`;
  if (!swept.length || col('median') < 0) { $('wealth-plot').innerHTML = ''; return; }
  const xName = swept[swept.length - 1], group = swept.length > 1 ? swept[0] : null;
  const groups = [...new Set(rows.map((row) => (group ? row[col(group)] : '')))];
  const lo = col('q5'), hi = col('q95');
  $('wealth-plot').innerHTML = chart(groups.map((g) => {
    const mine = rows.filter((row) => !group || row[col(group)] === g);
    return {
      name: group ? `median, ${group} = ${g}` : 'median',
      x: mine.map((row) => Number(row[col(xName)])),
      y: mine.map((row) => Number(row[col('median')])),
      ...(lo >= 0 && hi >= 0 ? { lo: mine.map((row) => Number(row[lo])), hi: mine.map((row) => Number(row[hi])) } : {}),
    };
  }), { xlabel: xName, ylabel: 'wealth' });
}

const UNITS = { counties: 'counties', regions: 'replicates', projection: 'model points', dynlapse: 'model points', wealth: 'paths', 'wealth-sweep': 'paths' };
const status = (text) => { $('status').textContent = text; };

async function runFromForm() {
  const workload = $('workload').value;
  const seed = $('seed').value === '' ? undefined : Number($('seed').value);
  const limit = workload === 'counties' ? Number($('limit').value) : undefined;
  $('run').disabled = true; $('cancel').disabled = false; $('progress').value = 0;
  const started = performance.now();
  try {
    const r = await run(workload, {
      seed, limit,
      onProgress: (p) => {
        if (FITS[workload]) { $('progress').removeAttribute('value'); status(`iteration ${p.iteration}, ${p.evaluations} evaluations, best SSE ${fmt(p.best_value)}`); }
        else { $('progress').value = p.done / p.total; status(`${p.done} of ${p.total} ${UNITS[workload]} done`); }
      },
    });
    const wall = ((performance.now() - started) / 1000).toFixed(2);
    $('progress').value = 1;
    if (FITS[workload]) {
      FITS[workload](r);
      status(`SSE ${r.value} after ${r.evaluations} evaluations, ${r.iterations} iterations (${r.termination}); ${wall} s on ${r.threads} thread(s); simulations per worker: ${r.work.join(', ')}`);
    } else if (workload === 'counties') {
      showCounties(r);
      status(`${r.done} of ${r.cases} counties fitted, ${r.failed} failed${r.cancelled ? ' (cancelled)' : ''}; ${wall} s on ${r.threads} thread(s); counties per worker: ${r.work.join(', ')}`);
    } else if (workload === 'regions') {
      showRegions(r);
      status(`${r.done} of ${r.cases} replicates fitted, ${r.failed} failed${r.cancelled ? ' (cancelled)' : ''}; ${wall} s on ${r.threads} thread(s); replicates per worker: ${r.work.join(', ')}`);
    } else if (workload === 'projection' || workload === 'dynlapse') {
      showProjection(r);
      status(`${r.points} model points × ${r.scenarios.length} scenario(s), ${r.horizon_months} months; ${wall} s on ${r.threads} thread(s); blocks of points per worker: ${r.work.join(', ')}`);
    } else {
      showWealth(r);
      status(`${r.points.length} point(s) × ${r.paths} paths × ${r.periods} periods; ${wall} s on ${r.threads} thread(s); path chunks per worker: ${r.work.join(', ')}`);
    }
  } catch (e) {
    status(`error: ${e.message}`);
  } finally {
    $('run').disabled = false; $('cancel').disabled = true;
  }
}

$('controls').addEventListener('submit', (e) => { e.preventDefault(); runFromForm(); });
$('cancel').addEventListener('click', cancel);
$('workload').addEventListener('change', () => { $('limit-label').hidden = $('workload').value !== 'counties'; });
$('limit-label').hidden = true;

// Start the pool now; the browser test drives the page through `window.parfit`.
window.parfit = {
  isolated,
  ready: ensureWorker().then((info) => { status(`Ready: ${info.threads} thread(s); models: ${info.models.map((m) => m.kind).join(', ')}.`); return info; },
    (e) => { status(`error: ${e.message}`); throw e; }),
  run, fits: FITS, showLv, showCounties, showRegions, showProjection, showWealth,
  setThreads: (n) => { $('threads').value = String(n); return ensureWorker(); },
};
