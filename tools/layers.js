// The layers of DESIGN.md as ESLint `no-restricted-imports` rules:
//   - @ioasid/uapi imports nothing of ours;
//   - @ioasid/core imports @ioasid/uapi only;
//   - a backend imports uapi and core, never another backend;
//   - inside a backend, src/hw and src/driver never import each other, src/spec imports
//     neither of them, and src/guest (the guest side of nesting) imports only src/spec;
//   - the conformance app sees backends through their package roots only.
// An import that crosses a forbidden line is a lint error, and lint is part of `npm test`.

const BACKENDS = ['intel-vtd', 'arm-smmuv3', 'papr-no-passthrough', 'virtio-iommu'];

/** @param {string[]} patterns @param {string} message */
const restrict = (patterns, message) => ({
  'no-restricted-imports': ['error', { patterns: [{ group: patterns, message }] }],
});

/** @type {import('eslint').Linter.Config[]} */
export const layerRules = [
  {
    files: ['packages/uapi/**/*.ts'],
    rules: restrict(['@ioasid/*'], 'uapi is the bottom layer: it imports nothing of ours.'),
  },
  {
    files: ['packages/core/**/*.ts'],
    rules: restrict(['@ioasid/*', '!@ioasid/uapi'], 'core imports @ioasid/uapi only.'),
  },
  ...BACKENDS.map((name) => ({
    files: [`packages/${name}/**/*.ts`],
    ignores: [`packages/${name}/src/hw/**`, `packages/${name}/src/driver/**`, `packages/${name}/src/spec/**`, `packages/${name}/src/guest/**`],
    rules: restrict(
      ['@ioasid/*', '!@ioasid/uapi', '!@ioasid/core', '!@ioasid/core/*'],
      'a backend imports @ioasid/uapi and @ioasid/core only, never another backend.',
    ),
  })),
  ...BACKENDS.map((name) => ({
    files: [`packages/${name}/src/hw/**/*.ts`],
    rules: restrict(
      ['**/driver', '**/driver/**', '@ioasid/*', '!@ioasid/uapi', '!@ioasid/core'],
      'the hardware model never imports the driver (DESIGN.md: memory, registers and queues only).',
    ),
  })),
  ...BACKENDS.map((name) => ({
    files: [`packages/${name}/src/driver/**/*.ts`],
    rules: restrict(
      ['**/hw', '**/hw/**', '@ioasid/*', '!@ioasid/uapi', '!@ioasid/core'],
      'the driver never imports the hardware model: it programs it through memory, registers, queues, hypercalls or request bytes.',
    ),
  })),
  ...BACKENDS.map((name) => ({
    files: [`packages/${name}/src/spec/**/*.ts`],
    rules: restrict(
      ['**/hw', '**/hw/**', '**/driver', '**/driver/**', '@ioasid/*', '!@ioasid/uapi', '!@ioasid/core'],
      'src/spec holds the specification names only: it imports neither hw nor driver.',
    ),
  })),
  ...BACKENDS.map((name) => ({
    files: [`packages/${name}/src/guest/**/*.ts`],
    rules: restrict(
      ['**/hw', '**/hw/**', '**/driver', '**/driver/**', '@ioasid/*', '!@ioasid/uapi', '!@ioasid/core'],
      'src/guest is the guest side of nesting: it builds structures from src/spec only, never the model or the driver.',
    ),
  })),
  {
    files: ['apps/conformance/**/*.ts'],
    rules: restrict(
      BACKENDS.map((b) => `@ioasid/${b}/*`),
      'the conformance app sees a backend through its package root only.',
    ),
  },
];
