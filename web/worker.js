// The module runs here, off the page's main thread: rayon's workers and this thread may block while they wait
// for each other, which a page's main thread may not do.
import init, { initThreadPool, threads, models, fit, fitMany, runPaths, project } from './pkg/parfit_wasm.js';

// The example files each job reads (the CLI's own configurations, copied by `cargo xtask wasm`).
const JOBS = {
  lv: { config: 'lotka_volterra/fit.toml', files: ['lotka_volterra/fit.toml', 'lotka_volterra/lotka_volterra.ds', 'lotka_volterra/data.csv'] },
  dosing: { config: 'dosing/fit.toml', files: ['dosing/fit.toml', 'dosing/dosing.ds', 'dosing/data.csv'] },
  robertson: { config: 'robertson/fit.toml', files: ['robertson/fit.toml', 'robertson/robertson.ds', 'robertson/data.csv'] },
  counties: { config: 'counties/fit.toml', files: ['counties/fit.toml', 'counties/Aging_Chain.mdl', 'counties/Males_by_decade_and_county.csv'] },
  regions: { config: 'regions/fit_many.toml', files: ['regions/fit_many.toml', 'regions/population.mdl', 'regions/replicates.csv'] },
  projection: {
    config: 'savings/run.toml',
    files: ['savings/run.toml', 'savings/model_point_10000.csv', 'savings/product_spec_table.csv', 'savings/mort_table.csv',
      'savings/surr_charge_table.csv', 'savings/disc_rate_ann.csv', 'savings/std_norm_rand.csv'],
  },
  // A model file (dynamic_lapse.prj) whose run.toml reads the savings tables as ../savings/…: the façade reads
  // paths with their `..` resolved, so those are the files savings/… here.
  dynlapse: {
    config: 'dynamic_lapse/run.toml',
    files: ['dynamic_lapse/run.toml', 'dynamic_lapse/dynamic_lapse.prj', 'dynamic_lapse/competitor_rate.csv',
      'savings/model_point_10000.csv', 'savings/product_spec_table.csv', 'savings/mort_table.csv',
      'savings/surr_charge_table.csv', 'savings/disc_rate_ann.csv', 'savings/std_norm_rand.csv'],
  },
  wealth: { config: 'wealth/run.toml', files: ['wealth/run.toml', 'wealth/wealth.mc'] },
  'wealth-sweep': { config: 'wealth/sweep.toml', files: ['wealth/sweep.toml', 'wealth/wealth.mc'] },
};
// Which façade function runs each workload.
const RUN = { lv: fit, dosing: fit, robertson: fit, counties: fitMany, regions: fitMany, projection: project, dynlapse: project, wealth: runPaths, 'wealth-sweep': runPaths };

async function files(job) {
  const out = {};
  for (const name of job.files) {
    const response = await fetch(new URL(`pkg/examples/${name}`, self.location.href));
    if (!response.ok) throw new Error(`pkg/examples/${name}: ${response.status}`);
    out[name] = await response.text();
  }
  return out;
}

let cancel = null; // Int32Array over a SharedArrayBuffer from the page, when isolated

self.onmessage = async ({ data }) => {
  try {
    if (data.type === 'init') {
      await init();
      // Without isolation there is no shared memory for workers: everything runs on this thread.
      if (self.crossOriginIsolated && data.threads > 1) await initThreadPool(data.threads);
      cancel = data.cancel ?? null;
      self.postMessage({ type: 'ready', threads: threads(), models: models() });
    } else if (data.type === 'run') {
      const job = JOBS[data.workload];
      const texts = await files(job);
      // The module calls back at most every 100 ms (and after the last case or path), so relaying each call costs little.
      const stop = () => (cancel ? Atomics.load(cancel, 0) === 1 : false);
      const options = { seed: data.seed ?? undefined, limit: data.limit ?? undefined };
      const result = RUN[data.workload](job.config, texts, options, (p) => { self.postMessage({ type: 'progress', progress: p }); return stop(); });
      self.postMessage({ type: 'result', workload: data.workload, result });
    }
  } catch (e) {
    self.postMessage({ type: 'error', message: String(e && e.message ? e.message : e) });
  }
};
