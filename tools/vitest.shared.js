// Shared vitest settings: tests import sibling packages from their TypeScript sources through
// the "@ioasid/source" export condition, so a package's tests never wait on another's build.
import { defaultServerConditions, defaultClientConditions } from 'vite';

/** @returns {import('vitest/config').UserConfig} */
export function sourceConditions() {
  return {
    resolve: { conditions: ['@ioasid/source', ...defaultClientConditions] },
    ssr: { resolve: { conditions: ['@ioasid/source', ...defaultServerConditions] } },
    test: { include: ['src/**/*.test.ts', 'test/**/*.test.ts'] },
  };
}
