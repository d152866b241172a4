#!/usr/bin/env node
// Makes sure Debian's Chromium is installed for the report's browser test: the project installs
// what its tests need. Runs before the app's tests (npm "pretest"). Installs with apt-get when
// running as root; otherwise says what to run.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const CHROMIUM = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'];

if (CHROMIUM.some((p) => existsSync(p))) process.exit(0);
const root = typeof process.getuid === 'function' && process.getuid() === 0;
if (!root) {
  console.error('Chromium is missing: run `sudo apt-get install -y --no-install-recommends chromium` (Debian) for the report test.');
  process.exit(1);
}
console.log('Installing Debian chromium for the HTML report test…');
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium'], { stdio: 'inherit', env });
if (!CHROMIUM.some((p) => existsSync(p))) {
  console.error('apt-get finished but no chromium binary was found');
  process.exit(1);
}
