/** Writes a report in its four formats into a folder. */

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderHtml } from './report/html.js';
import { renderJunit } from './report/junit.js';
import { renderMarkdown } from './report/markdown.js';
import { jsonSafe, type Report } from './report/schema.js';

/** The files written. */
export interface WrittenReports {
  /** report.json */
  readonly json: string;
  /** report.md */
  readonly markdown: string;
  /** report.html */
  readonly html: string;
  /** junit.xml */
  readonly junit: string;
}

/** Writes report.json, report.md, report.html and junit.xml into `dir` (created if needed). */
export function writeReports(report: Report, dir: string): WrittenReports {
  mkdirSync(dir, { recursive: true });
  const files = {
    json: join(dir, 'report.json'),
    markdown: join(dir, 'report.md'),
    html: join(dir, 'report.html'),
    junit: join(dir, 'junit.xml'),
  };
  writeFileSync(files.json, JSON.stringify(report, jsonSafe, 2) + '\n');
  writeFileSync(files.markdown, renderMarkdown(report));
  writeFileSync(files.html, renderHtml(report));
  writeFileSync(files.junit, renderJunit(report));
  return files;
}
