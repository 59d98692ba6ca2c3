// "Entra per conto di… / Act on behalf of…" in a real browser (issue 24): the Debian
// Chromium, headless, driven by playwright-core. Run by tests/tests/represent.rs, which
// starts Varco, the demo IdPs and the portal's representation API:
//
//   node tests/browser/represent.mjs <login-url> <chooser-url> <represented-sub> <artifact-dir>
//
// Steps: mario.rossi signs in at the demo IdP and lands on the chooser; the chooser runs no
// script, has one h1, a fieldset with a legend and a label for every radio button, and passes
// axe-core without serious or critical violations; from the keyboard alone the person picks
// the representation and submits; the browser lands on the address the chooser was given,
// where /whoami shows the represented person as `principal` and mario as `act`.

import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import axe from 'axe-core';

const [loginUrl, chooserUrl, representedSub, artifactDir] = process.argv.slice(2);
if (!loginUrl || !chooserUrl || !representedSub || !artifactDir) {
  console.error('usage: node represent.mjs <login-url> <chooser-url> <represented-sub> <artifact-dir>');
  process.exit(2);
}
const back = new URL(chooserUrl).searchParams.get('return_to');

function check(condition, what) {
  if (!condition) throw new Error(what);
}
function ok(what) {
  console.log(`ok - ${what}`);
}

const profile = mkdtempSync(join(tmpdir(), 'varco-chromium-'));
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
let step = 'start';
try {
  step = 'sign in at the demo IdP and land on the chooser';
  await page.goto(loginUrl);
  await page.selectOption('select[name=level]', '2');
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/represent'),
    page.locator('button[name=user][value="mario.rossi"]').click(),
  ]);
  ok(step);

  step = 'the chooser page';
  check((await page.getAttribute('html', 'lang')) === 'it', '<html lang="it">');
  check((await page.locator('main h1').count()) === 1, 'one h1 inside main');
  check((await page.locator('main h1').innerText()).includes('Entra per conto di'), 'h1 text');
  check((await page.evaluate(() => document.scripts.length)) === 0, 'the chooser runs no script');
  check((await page.locator('fieldset > legend').count()) === 1, 'a fieldset with a legend');
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input[type=radio]')].filter(
      (r) => !document.querySelector(`label[for="${r.id}"]`),
    ).length,
  );
  check(unlabelled === 0, `${unlabelled} radio button(s) without a label`);
  check((await page.locator('input[type=radio]').count()) === 2, 'myself and one representation');
  await page.evaluate(axe.source);
  const result = await page.evaluate(() => window.axe.run(document));
  for (const v of result.violations) {
    console.log(`axe: ${v.impact} ${v.id}: ${v.help} [${v.nodes.length} node(s)]`);
  }
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  check(bad.length === 0, `axe-core: ${bad.map((v) => v.id).join(', ')}`);
  const shot = resolve(artifactDir, 'represent-chooser.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`artifact: ${shot}`);
  ok(`axe-core on the chooser: no serious or critical violation (${result.passes.length} rules passed)`);

  step = 'choose from the keyboard';
  let focused = false;
  for (let i = 0; i < 12 && !focused; i++) {
    await page.keyboard.press('Tab');
    focused = await page.evaluate(() => document.activeElement?.type === 'radio');
  }
  check(focused, 'a radio button is reachable with Tab');
  await page.keyboard.press('ArrowDown');
  const chosen = await page.evaluate(() => document.querySelector('input[type=radio]:checked')?.value);
  check(chosen && chosen !== 'myself', `arrow key chose ${chosen}`);
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement?.type === 'submit'), 'Tab reaches the button');
  await Promise.all([page.waitForURL(back), page.keyboard.press('Enter')]);
  ok(`${step}: ${chosen}`);

  step = 'acting for the represented person';
  const who = JSON.parse(await page.locator('body').innerText());
  check(who.principal?.sub === representedSub, `principal: ${JSON.stringify(who.principal)}`);
  check(who.act?.sub === 'TINIT-RSSMRA80A01H501U', `act: ${JSON.stringify(who.act)}`);
  ok(`${step}: ${who.principal.sub} by ${who.act.sub}`);
} catch (e) {
  console.log(`not ok - ${step}: ${e.message}`);
  await context.close();
  process.exit(1);
}
await context.close();
