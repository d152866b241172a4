// Shared vitest settings: tests import sibling packages from their TypeScript sources through
// the "@ioasid/source" export condition, so a package's tests never wait on another's build.
import { defaultServerConditions, defaultClientConditions } from 'vite';

/** @returns {import('vitest/config').UserConfig} */
export function sourceConditions() {
  return {
    resolve: { conditions: ['@ioasid/source', ...defaultClientConditions] },
    ssr: { resolve: { conditions: ['@ioasid/source', ...defaultServerConditions] } },
    // Property tests and end-to-end runs share two cores with every other package's tests under
    // turbo; speed goals live in `npm run bench`, so tests get a generous time limit.
    test: { include: ['src/**/*.test.ts', 'test/**/*.test.ts', '*.test.ts'], testTimeout: 120_000, hookTimeout: 60_000 },
  };
}
