// `cargo xtask bench-wasm`: the LV fit, the county fits, the savings projection and the wealth run in headless
// Chromium with 1 and 2 workers, several repetitions each; prints one JSON object of the seconds each run reports
// (the run's own clock).
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const { chromium } = createRequire(import.meta.url)(process.env.PLAYWRIGHT_CORE);
const reps = Number(process.env.PARFIT_REPS || 3);
const profile = mkdtempSync(join(tmpdir(), 'parfit-chromium-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM, headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const out = {};
try {
  const page = browser.pages()[0] ?? await browser.newPage();
  await page.goto(process.env.PARFIT_URL);
  for (const threads of [1, 2]) {
    await page.evaluate(async (n) => window.parfit.setThreads(n), threads);
    for (const workload of ['lv', 'counties', 'projection', 'wealth']) {
      const seconds = [];
      for (let i = 0; i < reps; i++) {
        const r = await page.evaluate(async (w) => { const r = await window.parfit.run(w); return { seconds: r.seconds, threads: r.threads, value: r.value ?? r.done }; }, workload);
        if (r.threads !== threads) throw new Error(`asked for ${threads} workers, ran on ${r.threads}`);
        seconds.push(r.seconds);
      }
      out[`${workload}_${threads}`] = seconds;
      console.error(`wasm ${workload} ${threads} worker(s): ${seconds.map((s) => s.toFixed(3)).join(', ')} s`);
    }
  }
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
