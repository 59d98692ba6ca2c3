// The wallet login's cross-device page in a real browser: the Debian Chromium, headless,
// driven by playwright-core. Run by crates/broker/tests/wallet.rs, which serves Varco and
// plays the wallet (an independent Python wallet posting to Varco over HTTP):
//
//   node tests/browser/wallet.mjs <varco-base> <artifact-dir>
//
// Steps: the login page offers "Entra con IT-Wallet"; its QR link opens the waiting page,
// which shows the QR code as inline SVG, passes axe-core, and loads only Varco's own
// assets; the page's request URI and wallet link are printed (`request: <url>`) for the
// test's wallet, then the script waits for a line on stdin saying the wallet presented;
// the page (its poll script, or its refresh) then completes the login by itself and
// lands on /whoami with the PID's identity. One line per step; exit 1 at the first failure.

import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import axe from 'axe-core';

const [varco, artifactDir] = process.argv.slice(2);
if (!varco || !artifactDir) {
  console.error('usage: node wallet.mjs <varco-base> <artifact-dir>');
  process.exit(2);
}
const origin = new URL(varco).origin;
const check = (c, what) => { if (!c) throw new Error(what); };
const ok = (what) => console.log(`ok - ${what}`);
const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise((res) => lines.once('line', res));

const profile = mkdtempSync(join(tmpdir(), 'varco-chromium-wallet-'));
mkdirSync(artifactDir, { recursive: true });
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  locale: 'it-IT',
  viewport: { width: 1024, height: 900 },
});
const page = context.pages()[0] ?? (await context.newPage());
const requests = [];
const consoleErrors = [];
page.on('request', (r) => requests.push(r.url()));
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
let code = 0;
try {
  await page.goto(`${varco}/login?return_to=%2Fwhoami`);
  const button = page.locator('#wallet-button');
  check(await button.count() === 1, 'no wallet button on the login page');
  check((await button.innerText()).includes('Entra con IT-Wallet'), 'wallet button label');
  ok('login page offers Entra con IT-Wallet');

  await page.click('#wallet-qr');
  await page.waitForURL(/\/wallet\/wait\?id=/);
  const box = page.locator('#wallet');
  const requestUri = await box.getAttribute('data-request-uri');
  const link = await page.locator('#wallet-link').getAttribute('href');
  check(requestUri && link && link.includes(encodeURIComponent(requestUri)), 'request uri and link');
  check(await page.locator('figure.qr svg').count() === 1, 'no QR code');
  check(await page.locator('[role=status]').count() === 1, 'no status region');
  ok('waiting page shows the QR code');

  await page.evaluate(axe.source);
  const result = await page.evaluate(() => window.axe.run(document));
  for (const v of result.violations) {
    console.log(`axe: ${v.impact} ${v.id}: ${v.help} [${v.nodes.length} node(s)]`);
  }
  const serious = result.violations.filter((v) => ['serious', 'critical'].includes(v.impact));
  check(serious.length === 0, `axe: ${JSON.stringify(serious.map((v) => v.id))}`);
  ok('axe-core on the waiting page');
  await page.screenshot({ path: join(artifactDir, 'wallet-wait.png'), fullPage: true });
  console.log(`artifact: ${join(artifactDir, 'wallet-wait.png')}`);

  console.log(`request: ${link}`);
  // Errors on Varco's pages (a CSP refusal would show here); /whoami is bare JSON, for
  // which Chromium may ask /favicon.ico (404) on its own.
  const pageErrors = consoleErrors.length;
  const said = await nextLine();
  check(said.trim() === 'presented', `the test said ${said}`);
  await page.waitForURL(`${origin}/whoami`, { timeout: 20000 });
  const me = JSON.parse(await page.locator('body').innerText());
  check(me.principal.sub === 'TINIT-RSSMRA80A10H501W', `sub ${me.principal.sub}`);
  check(me.principal.auth.method === 'wallet', 'method');
  ok(`page completed the login by itself: ${me.principal.given_name} ${me.principal.family_name}`);

  const foreign = requests.filter((u) => new URL(u).origin !== origin);
  check(foreign.length === 0, `third-party requests: ${foreign}`);
  check(pageErrors === 0, `console errors: ${consoleErrors}`);
  ok('no third-party request, no console error');
} catch (e) {
  console.log(`not ok - ${e.message}`);
  code = 1;
} finally {
  lines.close();
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(code);
