// The browser test `cargo xtask test` runs: headless Chromium (Debian's) driven by playwright-core opens the page
// served cross-origin isolated, runs the Lotka–Volterra, dosing and Robertson DAE fits, the first county fits, the
// savings projection, the dynamic-lapse model file and the Monte Carlo wealth runs on 2 workers, and checks the numbers against the native CLI's
// for the same configuration and seed (PARFIT_EXPECTED holds them).
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (k) => { if (!process.env[k]) throw new Error(`${k} is not set (run through cargo xtask test)`); return process.env[k]; };
const { chromium } = createRequire(import.meta.url)(env('PLAYWRIGHT_CORE'));
const expected = env('PARFIT_EXPECTED'), counties = Number(env('PARFIT_COUNTIES'));
let passed = 0, failed = 0;
function check(name, ok, detail = '') {
  if (ok) passed++; else failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ': ' + detail : ''}`);
}

const profile = mkdtempSync(join(tmpdir(), 'parfit-chromium-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: env('CHROMIUM'),
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'],
  viewport: { width: 1100, height: 1000 },
});
try {
  const page = browser.pages()[0] ?? await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(env('PARFIT_URL'));
  check('the page is cross-origin isolated', await page.evaluate(() => self.crossOriginIsolated === true));
  const pool = await page.evaluate(async () => (await window.parfit.setThreads(2)).threads);
  check('the pool has 2 workers', pool === 2, `threads() = ${pool}`);

  // Lotka–Volterra: fit.toml with its own seed, as `parfit fit examples/lotka_volterra/fit.toml`.
  const lv = await page.evaluate(async () => { const r = await window.parfit.run('lv'); window.parfit.showLv(r); return r; });
  const cli = JSON.parse(readFileSync(join(expected, 'lv.json'), 'utf8'));
  const same = (a, b) => Object.is(a, b);
  // Every exp, ln and pow — the CMA-ES step-size adaptation, the normal sampler's tails, the model's and the
  // interpreter's — is the libm crate's on both sides (parfit_core::math; glibc's differs in the last bit for about
  // one argument in ten), and the CLI's JIT code gives the interpreter's bits, so the fit is the CLI's bit for bit.
  const identical = same(lv.value, cli.value) && Object.entries(cli.x).every(([k, v]) => same(lv.x[k], v)) && lv.evaluations === cli.evaluations;
  check('LV: the SSE, every parameter and the evaluations equal the CLI\'s bit for bit', identical,
    `SSE wasm ${lv.value}, native ${cli.value}; ${Object.entries(cli.x).map(([k, v]) => `${k} ${lv.x[k]} vs ${v}`).join(', ')}; evaluations wasm ${lv.evaluations}, native ${cli.evaluations}`);
  check('LV: the fit ran to the end', lv.termination === cli.termination, `wasm ${lv.termination}, native ${cli.termination}`);
  // work[i] counts the simulations of pool worker i; a last entry, if any, the calling thread's (single points).
  const busy = lv.work.slice(0, lv.threads).filter((n) => n > 0).length;
  check('LV: more than one worker simulated', lv.threads === 2 && busy > 1, `simulations per worker: ${lv.work.join(', ')}`);
  mkdirSync(join(expected, 'screenshots'), { recursive: true });
  await page.locator('#lv').screenshot({ path: join(expected, 'screenshots/lv-fit.png') });

  // The same fit on one worker: bit for bit the same in the browser, whatever the pool size.
  await page.evaluate(async () => window.parfit.setThreads(1));
  const one = await page.evaluate(async () => window.parfit.run('lv'));
  check('LV: 1 worker gives the 2 workers\' result bit for bit', same(one.value, lv.value) && Object.keys(lv.x).every((k) => same(one.x[k], lv.x[k])) && one.evaluations === lv.evaluations,
    `1 worker ${one.value}, 2 workers ${lv.value}`);
  await page.evaluate(async () => window.parfit.setThreads(2));

  // The DiffSL examples beyond plain ODEs (events: a dose at each stop; a DAE), interpreted here where the CLI runs
  // the JIT's code (bit for bit the same), fitted by Levenberg–Marquardt on a log scale: the log scale's exp and ln
  // and the step-size control's pow are the same libm on both sides (as for LV), so the fits are the CLI's bit for bit.
  for (const workload of ['dosing', 'robertson']) {
    const wasm = await page.evaluate(async (w) => { const r = await window.parfit.run(w); window.parfit.fits[w](r); return r; }, workload);
    const native = JSON.parse(readFileSync(join(expected, `${workload}.json`), 'utf8'));
    const bits = same(wasm.value, native.value) && Object.entries(native.x).every(([k, v]) => same(wasm.x[k], v)) && wasm.evaluations === native.evaluations;
    check(`${workload}: the SSE, every parameter and the evaluations equal the CLI's bit for bit`, bits,
      `SSE wasm ${wasm.value}, native ${native.value}; ${Object.entries(native.x).map(([k, v]) => `${k} ${wasm.x[k]} vs ${v}`).join(', ')}; evaluations wasm ${wasm.evaluations}, native ${native.evaluations}`);
    check(`${workload}: the fit ended as the CLI's`, wasm.termination === native.termination, `wasm ${wasm.termination}, native ${native.termination}`);
    await page.locator(`#${workload}`).screenshot({ path: join(expected, `screenshots/${workload}.png`) });
  }

  // County fits: the first rows of the cookbook's table, as `parfit fit-many` on the same rows.
  const many = await page.evaluate(async (limit) => { const r = await window.parfit.run('counties', { limit }); window.parfit.showCounties(r); return r; }, counties);
  const lines = readFileSync(join(expected, 'counties/results/results.csv'), 'utf8').trim().split('\n');
  // RFC 4180 cells (county names may be quoted); the CLI writes no line breaks inside cells.
  const split = (line) => [...line.matchAll(/("(?:[^"]|"")*"|[^,]*)(,|$)/g)].slice(0, -1).map((m) => m[1].replace(/^"|"$/g, '').replace(/""/g, '"'));
  const header = split(lines[0]);
  const rows = lines.slice(1).map(split);
  check('counties: as many cases as the CLI', many.rows.length === rows.length && rows.length === counties, `${many.rows.length} vs ${rows.length}`);
  let mismatches = 0;
  many.rows.forEach((r, i) => {
    const cells = rows[i];
    const xs = cells.slice(2, 2 + r.x.length).map(Number);
    if (!r.x.every((v, k) => same(v, xs[k])) || !same(r.value, Number(cells[2 + r.x.length]))) mismatches++;
  });
  check('counties: every fitted rate and SSE equals the CLI\'s bit for bit', mismatches === 0, `${mismatches} differing rows; columns ${header.slice(0, 3).join(', ')}…`);
  check('counties: more than one worker fitted cases', many.work.slice(0, many.threads).filter((n) => n > 0).length > 1, `cases per worker: ${many.work.join(', ')}`);

  // The regional bootstrap: the subscripted Vensim model (interpreted here, native code in the CLI), one fit per
  // replicate, as `parfit fit-many examples/regions/fit_many.toml`.
  const regions = await page.evaluate(async () => { const r = await window.parfit.run('regions'); window.parfit.showRegions(r); return r; });
  const regionRows = readFileSync(join(expected, 'regions/results/results.csv'), 'utf8').trim().split('\n').slice(1).map(split);
  check('regions: one fit per replicate, in order, as the CLI', regions.rows.length === regionRows.length && regions.rows.every((r, i) => r.ids[0] === regionRows[i][0]),
    `${regions.rows.length} vs ${regionRows.length} rows`);
  let regionMismatches = 0;
  regions.rows.forEach((r, i) => {
    const xs = regionRows[i].slice(1, 1 + r.x.length).map(Number);
    if (r.error || !r.x.every((v, k) => same(v, xs[k])) || !same(r.value, Number(regionRows[i][1 + r.x.length]))) regionMismatches++;
  });
  check('regions: every fitted parameter and SSE equals the CLI\'s bit for bit', regionMismatches === 0, `${regionMismatches} differing rows`);
  check('regions: more than one worker fitted replicates', regions.work.slice(0, regions.threads).filter((n) => n > 0).length > 1, `replicates per worker: ${regions.work.join(', ')}`);

  // Policy projection: lifelib's savings model over the 10,000 model points, as `parfit run examples/savings/run.toml`.
  // Discount factors and fund returns call pow and exp: the same libm on both sides, so the totals (sums over
  // 10,000 points in a fixed order) and the monthly cash flows (result_cf.csv holds shortest round-trip text) are
  // the CLI's bit for bit.
  const projection = await page.evaluate(async () => { const r = await window.parfit.run('projection'); window.parfit.showProjection(r); return r; });
  const totals = JSON.parse(readFileSync(join(expected, 'savings/totals.json'), 'utf8'));
  const columns = Object.keys(totals.totals);
  check('projection: as many points and months as the CLI', projection.points === totals.points && projection.horizon_months === totals.horizon_months && columns.length > 0,
    `${projection.points} points, ${projection.horizon_months} months`);
  check('projection: every portfolio total equals the CLI\'s bit for bit', columns.every((k) => same(projection.totals[k], totals.totals[k])),
    columns.map((k) => `${k} ${projection.totals[k]} vs ${totals.totals[k]}`).join('; '));
  // The number of (month, column) cells whose value differs from the CLI's file, per column.
  const differing = (rows, monthly) => rows[0].slice(1).map((name, c) => {
    const native = rows.slice(1).map((row) => Number(row[c + 1])), wasm = monthly[name] || [];
    return wasm.length === native.length ? native.filter((v, t) => !same(wasm[t], v)).length : Infinity;
  });
  const cf = readFileSync(join(expected, 'savings/result_cf.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
  const cfDiffer = differing(cf, projection.monthly);
  check('projection: every monthly cash flow equals result_cf.csv bit for bit', cfDiffer.every((n) => n === 0),
    cf[0].slice(1).map((name, c) => `${name} ${cfDiffer[c]} differing months`).join(', '));
  check('projection: more than one worker projected', projection.work.slice(0, projection.threads).filter((n) => n > 0).length > 1, `blocks per worker: ${projection.work.join(', ')}`);
  await page.locator('#projection').screenshot({ path: join(expected, 'screenshots/projection.png') });

  // A model file with tables: examples/dynamic_lapse (dynamic_lapse.prj, the savings tables read as ../savings/…),
  // as `parfit run examples/dynamic_lapse/run.toml`; bit for bit as the savings run.
  const dyn = await page.evaluate(async () => { const r = await window.parfit.run('dynlapse'); window.parfit.showProjection(r); return r; });
  const dynCli = JSON.parse(readFileSync(join(expected, 'dynamic_lapse/totals.json'), 'utf8'));
  const dynColumns = Object.keys(dynCli.totals);
  console.log(`dynamic lapse: ${dyn.seconds.toFixed(3)} s on ${dyn.threads} workers (the savings kind ${projection.seconds.toFixed(3)} s)`);
  check('dynamic lapse: the model file ran, as many points and months as the CLI', dyn.model === dynCli.model && dyn.points === dynCli.points && dyn.horizon_months === dynCli.horizon_months && dynColumns.length > 0,
    `model ${dyn.model}, ${dyn.points} points, ${dyn.horizon_months} months`);
  check('dynamic lapse: every portfolio total equals the CLI\'s bit for bit', dynColumns.every((k) => same(dyn.totals[k], dynCli.totals[k])),
    dynColumns.map((k) => `${k} ${dyn.totals[k]} vs ${dynCli.totals[k]}`).join('; '));
  check('dynamic lapse: its surrenders differ from the savings model\'s (the lapse is dynamic)', dyn.totals.Surrender !== projection.totals.Surrender,
    `${dyn.totals.Surrender} vs ${projection.totals.Surrender}`);
  const dynPols = readFileSync(join(expected, 'dynamic_lapse/result_pols.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
  const polsDiffer = differing(dynPols, dyn.monthly);
  check('dynamic lapse: the monthly policy counts (lapses among them) equal result_pols.csv bit for bit', dynPols[0].includes('pols_lapse') && polsDiffer.every((n) => n === 0),
    dynPols[0].slice(1).map((name, c) => `${name} ${polsDiffer[c]} differing months`).join(', '));
  await page.locator('#projection').screenshot({ path: join(expected, 'screenshots/dynamic_lapse.png') });

  // Monte Carlo wealth: `parfit run examples/wealth/run.toml` and its sweep. Each lognormal() draw calls exp and
  // the normal sampler's tail ln: the same libm on both sides, so every statistic is the CLI's bit for bit.
  const identicalStats = (wasm, native) => native.points.length === wasm.points.length && native.points.every((p, i) =>
    Object.entries(p.statistics).every(([out, stats]) => Object.entries(stats).every(([k, v]) => same(wasm.points[i].statistics[out]?.[k], v))));
  for (const [workload, file] of [['wealth', 'wealth.json'], ['wealth-sweep', 'wealth-sweep.json']]) {
    const wasm = await page.evaluate(async (w) => { const r = await window.parfit.run(w); window.parfit.showWealth(r); return r; }, workload);
    const native = JSON.parse(readFileSync(join(expected, file), 'utf8'));
    check(`${workload}: ${native.points.length} point(s) of ${native.paths} paths, every statistic equals the CLI's bit for bit`,
      wasm.paths === native.paths && wasm.periods === native.periods && identicalStats(wasm, native),
      `wasm ${JSON.stringify(wasm.points.map((p) => p.statistics.w))}, native ${JSON.stringify(native.points.map((p) => p.statistics.w))}`);
    check(`${workload}: more than one worker ran paths`, wasm.work.slice(0, wasm.threads).filter((n) => n > 0).length > 1, `chunks per worker: ${wasm.work.join(', ')}`);
    if (workload === 'wealth-sweep') {
      await page.locator('#wealth').screenshot({ path: join(expected, 'screenshots/wealth-sweep.png') });
      // Keyed streams: 1 worker gives the 2 workers' statistics bit for bit.
      await page.evaluate(async () => window.parfit.setThreads(1));
      const one = await page.evaluate(async () => window.parfit.run('wealth-sweep'));
      check('wealth-sweep: 1 worker gives the 2 workers\' statistics bit for bit', identicalStats(one, wasm) && one.threads === 1, `threads ${one.threads}`);
      await page.evaluate(async () => window.parfit.setThreads(2));
    }
  }
  check('no errors in the page', errors.length === 0, errors.join(' | '));

  // Served without COOP/COEP: no shared memory for workers, so the page says so and runs on one thread.
  const plain = await browser.newPage();
  await plain.goto(env('PARFIT_URL_PLAIN'));
  const note = await plain.locator('#isolation').textContent();
  check('without isolation the page says so', !(await plain.evaluate(() => self.crossOriginIsolated)) && note.includes('Not cross-origin isolated'), note);
  const single = await plain.evaluate(async () => { await window.parfit.ready; return window.parfit.run('counties', { limit: 5 }); });
  check('without isolation it runs single-threaded with the same numbers', single.threads === 1 && single.rows.every((r, i) => r.x.every((v, k) => same(v, many.rows[i].x[k]))),
    `threads ${single.threads}`);
  console.log(`screenshot: ${join(expected, 'screenshots/lv-fit.png')}`);
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
