/**
 * The backend registry. The app knows no backend by name: it loads packages that declare an
 * `"ioasid"` field in their package.json — `{ "backend": "<id>", "factory": "<export>",
 * "nestingGuest"?: "<export>", "variants"?: "<export>" }` — from its own dependencies and from
 * `--module` arguments, so a fifth backend joins by being installed, without a change here.
 */

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IoasidError, type DeviceSpec, type IoasidSystem, type NestingGuest } from '@ioasid/uapi';

/** The `"ioasid"` field of a backend package. */
export interface BackendManifest {
  /** Backend id (package name without scope). */
  readonly backend: string;
  /** Name of the exported factory `(options: { devices, … }) → IoasidSystem`. */
  readonly factory: string;
  /** Name of the exported NestingGuest, if the backend has hardware nesting. */
  readonly nestingGuest?: string;
  /** Name of an exported array of variants `{ id, label, options }` (extra configurations). */
  readonly variants?: string;
}

/** A backend configuration the runner can instantiate. */
export interface BackendEntry {
  /** Id shown in reports (`intel-vtd`, or a variant id such as `virtio-iommu+ext`). */
  readonly id: string;
  /** The npm package. */
  readonly packageName: string;
  /** One-line description. */
  readonly label: string;
  /** Builds a fresh system with these devices. */
  create(devices: readonly (string | DeviceSpec)[]): IoasidSystem;
  /** The guest-side stage-1 builder. */
  readonly guest: NestingGuest | undefined;
}

/** A variant a backend package exports. */
export interface BackendVariant {
  /** Variant id. */
  readonly id: string;
  /** One-line description. */
  readonly label: string;
  /** Options merged into the factory's options. */
  readonly options: Readonly<Record<string, unknown>>;
}

type Factory = (options: Record<string, unknown>) => IoasidSystem;

const require = createRequire(import.meta.url);

function packageJsonOf(name: string): { name: string; description?: string; ioasid?: BackendManifest; dependencies?: Record<string, string> } {
  const path = require.resolve(`${name}/package.json`);
  return JSON.parse(readFileSync(path, 'utf8')) as ReturnType<typeof packageJsonOf>;
}

/** The app's own dependencies that declare themselves backends. */
export function defaultBackendModules(): string[] {
  const own = join(dirname(fileURLToPath(import.meta.url)), '..', 'package.json');
  const pkg = JSON.parse(readFileSync(own, 'utf8')) as { dependencies?: Record<string, string> };
  return Object.keys(pkg.dependencies ?? {}).filter((name) => {
    try {
      return packageJsonOf(name).ioasid !== undefined;
    } catch {
      return false;
    }
  });
}

/**
 * Loads backend packages and returns their configurations, in the order given. With `only`,
 * packages whose backend id cannot match (a variant id starts with its backend's id) are not
 * even imported.
 */
export async function loadBackends(modules: readonly string[], only?: readonly string[]): Promise<BackendEntry[]> {
  const out: BackendEntry[] = [];
  for (const name of modules) {
    const pkg = packageJsonOf(name);
    const manifest = pkg.ioasid;
    if (manifest === undefined) throw new IoasidError('EINVAL', 'module', `${name} has no "ioasid" field in its package.json`);
    if (only !== undefined && !only.some((id) => id.startsWith(manifest.backend))) continue;
    const mod = (await import(name)) as Record<string, unknown>;
    const factory = mod[manifest.factory];
    if (typeof factory !== 'function') throw new IoasidError('EINVAL', 'module', `${name} does not export ${manifest.factory}()`);
    const guest = manifest.nestingGuest === undefined ? undefined : (mod[manifest.nestingGuest] as NestingGuest | undefined);
    const make = (extra: Readonly<Record<string, unknown>>) => (devices: readonly (string | DeviceSpec)[]) =>
      (factory as Factory)({ ...extra, devices });
    out.push({ id: manifest.backend, packageName: name, label: pkg.description ?? name, create: make({}), guest });
    const variants = manifest.variants === undefined ? undefined : (mod[manifest.variants] as readonly BackendVariant[] | undefined);
    for (const v of variants ?? []) {
      out.push({ id: v.id, packageName: name, label: v.label, create: make(v.options), guest });
    }
  }
  return out;
}
