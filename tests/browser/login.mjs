// A citizen's login in a real browser: the Debian Chromium, headless, driven by
// playwright-core. Run by tests/tests/browser.rs, which starts Varco and the demo IdPs:
//
//   node tests/browser/login.mjs <varco-base> <login-url> <spid-idp-base> <artifact-dir>
//
// <login-url> is where the protected address sent the anonymous browser. Steps: the protected
// address answers 401 without a session; the login page (Italian, then English, then back)
// loads only Varco's own assets, runs no script and passes axe-core without serious or
// critical violations; the SPID button, opened from the keyboard, lists the demo IdP; at the
// IdP mario.rossi signs in; the browser lands back on the protected address with his
// identity, and `/` greets him. Prints one line per step; exits 1 at the first failure.

import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import axe from 'axe-core';

const [varco, loginUrl, idpBase, artifactDir] = process.argv.slice(2);
if (!varco || !loginUrl || !idpBase || !artifactDir) {
  console.error('usage: node login.mjs <varco-base> <login-url> <spid-idp-base> <artifact-dir>');
  process.exit(2);
}
const varcoOrigin = new URL(varco).origin;
const idpOrigin = new URL(idpBase).origin;
const returnTo = new URL(loginUrl).searchParams.get('return_to');

function check(condition, what) {
  if (!condition) throw new Error(what);
}

let step = 'start';
function ok(what) {
  console.log(`ok - ${what}`);
}

const profile = mkdtempSync(join(tmpdir(), 'varco-chromium-'));
mkdirSync(artifactDir, { recursive: true });
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
  locale: 'it-IT',
  viewport: { width: 1024, height: 900 },
});
const page = context.pages()[0] ?? (await context.newPage());

// Every request the pages make, to prove that no third party is ever asked for anything, and
// every console message, to catch Content-Security-Policy refusals.
const requests = [];
page.on('request', (r) => requests.push(r.url()));
const consoleErrors = [];
page.on('console', (m) => {
  if (m.type() === 'error') consoleErrors.push(m.text());
});

async function runAxe(label) {
  // Evaluated through the DevTools protocol, which the page's CSP does not govern (an
  // injected <script> would be refused, as it should).
  await page.evaluate(axe.source);
  const result = await page.evaluate(() => window.axe.run(document));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of result.violations) {
    console.log(`axe (${label}): ${v.impact} ${v.id}: ${v.help} [${v.nodes.length} node(s)]`);
  }
  check(
    bad.length === 0,
    `axe-core on the ${label} login page: ${bad.map((v) => `${v.id} (${v.impact})`).join(', ')}`,
  );
  check(result.passes.length > 10, `axe-core ran too few checks (${result.passes.length})`);
  ok(`axe-core on the ${label} login page: no serious or critical violation (${result.passes.length} rules passed)`);
}

async function checkLoginPage(response, lang) {
  check(response && response.status() === 200, `login page status ${response?.status()}`);
  const headers = response.headers();
  check(
    (headers['content-security-policy'] ?? '').includes("default-src 'self'"),
    `login page CSP: ${headers['content-security-policy']}`,
  );
  check((await page.getAttribute('html', 'lang')) === lang, `<html lang> is not ${lang}`);
  check((await page.locator('main h1').count()) === 1, 'one h1 inside main');
  check(await page.locator('header nav a[hreflang]').isVisible(), 'language switch visible');
  check((await page.evaluate(() => document.scripts.length)) === 0, 'the login page runs no script');
  const sheets = await page.evaluate(() => [...document.styleSheets].map((s) => s.href));
  check(
    sheets.length === 1 && sheets[0].startsWith(`${varcoOrigin}/assets/varco.css?v=`),
    `stylesheet from Varco: ${sheets}`,
  );
  const styled = await page.evaluate(() => getComputedStyle(document.querySelector('.bar')).backgroundColor);
  check(styled === 'rgb(0, 64, 127)', `stylesheet applied (top bar ${styled})`);
  const images = await page.evaluate(() =>
    [...document.images].map((i) => ({ src: i.src, loaded: i.complete && i.naturalWidth > 0 })),
  );
  check(images.length >= 2 && images.every((i) => i.loaded), `icons loaded: ${JSON.stringify(images)}`);
}

try {
  step = 'protected address without a session';
  let r = await page.goto(new URL(returnTo, varco).href);
  check(r.status() === 401, `expected 401, got ${r.status()}`);
  ok(`${step}: 401`);

  step = 'login page (Italian, from Accept-Language)';
  r = await page.goto(loginUrl);
  await checkLoginPage(r, 'it');
  const spidButton = page.locator('#spid-choice > summary');
  check((await spidButton.innerText()).includes('Entra con SPID'), 'SPID button label');
  check(await page.locator('#eidas-button').isVisible(), 'eIDAS button shown');
  check(await page.locator('#cns-button').isVisible(), 'CNS button shown');
  check((await page.locator('#cie-h').count()) === 0, 'no CIE block without CIE IdPs');
  const idpLinks = page.locator('#spid-choice ul.idps a');
  check(!(await idpLinks.first().isVisible()), 'the SPID list starts closed');
  ok(step);
  await runAxe('Italian');

  step = 'language switch to English and back';
  await Promise.all([page.waitForURL(/lang=en/), page.locator('header nav a[hreflang=en]').click()]);
  const enUrl = new URL(page.url());
  check(enUrl.pathname === '/login', `English page path ${enUrl.pathname}`);
  check(enUrl.searchParams.get('return_to') === returnTo, 'return_to kept by the switch');
  check(
    enUrl.searchParams.get('level') === new URL(loginUrl).searchParams.get('level'),
    'level kept by the switch',
  );
  await checkLoginPage(await page.reload(), 'en');
  check((await spidButton.innerText()).includes('Sign in with SPID'), 'English SPID button label');
  await runAxe('English');
  const enShot = resolve(artifactDir, 'login-page-en.png');
  await page.screenshot({ path: enShot, fullPage: true });
  console.log(`artifact: ${enShot}`);
  await Promise.all([page.waitForURL(/lang=it/), page.locator('header nav a[hreflang=it]').click()]);
  check((await page.getAttribute('html', 'lang')) === 'it', 'back to Italian');
  ok(step);

  step = 'SPID button opened from the keyboard';
  let focused = false;
  for (let i = 0; i < 12 && !focused; i++) {
    await page.keyboard.press('Tab');
    focused = await spidButton.evaluate((el) => el === document.activeElement);
  }
  check(focused, 'the SPID button is reachable with Tab');
  const outline = await spidButton.evaluate((el) => {
    const s = getComputedStyle(el);
    return { style: s.outlineStyle, width: parseFloat(s.outlineWidth) };
  });
  check(outline.style !== 'none' && outline.width >= 2, `focus visible: ${JSON.stringify(outline)}`);
  await page.keyboard.press('Enter');
  await idpLinks.first().waitFor({ state: 'visible' });
  const hrefs = await idpLinks.evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  const wanted = `/saml/login?idp=${encodeURIComponent(idpBase).replaceAll('%2E', '.')}&`;
  const mine = hrefs.find((h) => h.startsWith(wanted));
  check(mine, `no link to the demo IdP among ${hrefs}`);
  check(mine.includes(`&return_to=${encodeURIComponent(returnTo)}`), `return_to on ${mine}`);
  const shot = resolve(artifactDir, 'login-page.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`artifact: ${shot}`);
  ok(`${step}: ${hrefs.length} SPID IdP(s) listed`);

  step = 'demo IdP';
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(`${idpBase}/sso`)),
    page.locator(`#spid-choice a[href="${mine}"]`).click(),
  ]);
  await page.selectOption('select[name=level]', '2');
  ok(`${step}: at ${idpOrigin}/sso`);

  step = 'back on the protected address with the identity';
  await Promise.all([
    page.waitForURL(new URL(returnTo, varco).href),
    page.locator('button[name=user][value="mario.rossi"]').click(),
  ]);
  const who = JSON.parse(await page.locator('body').innerText());
  check(who.principal?.sub === 'TINIT-RSSMRA80A01H501U', `identity: ${JSON.stringify(who)}`);
  check(who.principal?.given_name === 'Mario', `given name: ${JSON.stringify(who.principal)}`);
  ok(`${step}: ${who.principal.given_name} ${who.principal.family_name}`);

  step = 'home page greets the signed-in citizen';
  r = await page.goto(`${varco}/`);
  const text = await page.locator('main').innerText();
  check(text.includes('Accesso effettuato: Mario Rossi'), `home page says: ${text}`);
  ok(step);

  step = 'no third-party request';
  const foreign = requests.filter((u) => {
    const o = new URL(u).origin;
    return o !== varcoOrigin && o !== idpOrigin;
  });
  check(foreign.length === 0, `requests to other origins: ${foreign}`);
  const refused = consoleErrors.filter((m) => /Content Security Policy|Refused to/i.test(m));
  check(refused.length === 0, `CSP refusals: ${refused}`);
  ok(`${step} (${requests.length} requests, all to Varco or the IdP)`);
} catch (e) {
  console.error(`FAILED at "${step}": ${e.message}`);
  console.error(`page: ${page.url()}`);
  try {
    const failShot = resolve(artifactDir, 'login-failure.png');
    await page.screenshot({ path: failShot, fullPage: true });
    console.error(`artifact: ${failShot}`);
  } catch {
    // The screenshot is a help, not the verdict.
  }
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
