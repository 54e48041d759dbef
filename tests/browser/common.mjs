// What the browser scripts share: reading their environment, saying each
// step, reading the SMTP sink's mail, reading latchkey's and the echo
// app's pages, and screenshots.

import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';

export function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (this script is run by tests/it/)`);
  return v;
}

export function step(what) {
  console.log(`- ${what}`);
}

// A reader of the mail the SMTP sink wrote to `dir` (N.json each): `next(to)`
// is the next sign-in mail to `to` not read yet (new-device notices are
// skipped).
export function mailbox(dir) {
  const read = new Set();
  return async function next(to) {
    const deadline = Date.now() + 15000;
    while (Date.now() < deadline) {
      const files = readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .sort((a, b) => parseInt(a) - parseInt(b));
      for (const f of files) {
        if (read.has(f)) continue;
        const m = JSON.parse(readFileSync(join(dir, f), 'utf8'));
        if (m.subject.startsWith('New sign-in to ')) continue;
        if (m.to.some((t) => t.toLowerCase() === to)) {
          read.add(f);
          return m;
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no email to ${to} within 15s`);
  };
}

export function linkOf(mail) {
  const m = mail.text.match(/https?:\/\/\S+\/\.latchkey\/verify\?token=[A-Za-z0-9_-]+/);
  assert.ok(m, `no sign-in link in the email:\n${mail.text}`);
  return m[0];
}

export async function heading(page) {
  return (await page.locator('h1').first().textContent()).trim();
}

// What the echo app showed as the value of header `name` (its page lists
// every header it received in a table), or null.
export async function echoedHeader(page, name) {
  const cells = page.locator(`tr:has(th:text-is("${name}")) td`);
  if ((await cells.count()) === 0) return null;
  return (await cells.first().innerText()).trim();
}

const SIZES = [
  { name: 'phone', width: 390, height: 844 },
  { name: 'desktop', width: 1280, height: 800 },
];

// Saves the page as `dir/name-phone.png` and `dir/name-desktop.png` (390x844
// and 1280x800, full page) and restores the desktop width.
export async function shoot(page, dir, name) {
  mkdirSync(dir, { recursive: true });
  for (const s of SIZES) {
    await page.setViewportSize({ width: s.width, height: s.height });
    await page.screenshot({ path: join(dir, `${name}-${s.name}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

// Chromium's flags for these tests (as DESIGN found them to work here),
// with the host names to resolve to 127.0.0.1.
export function chromiumArgs(hosts) {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    `--host-resolver-rules=${hosts.map((h) => `MAP ${h} 127.0.0.1`).join(', ')}`,
  ];
}
