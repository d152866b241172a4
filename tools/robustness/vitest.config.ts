import { defineConfig, mergeConfig } from 'vitest/config';
import { sourceConditions } from '../../tools/vitest.shared.js';

export default mergeConfig(
  defineConfig(sourceConditions()),
  defineConfig({
    test: {
      globalSetup: ['./test/global-setup.ts'],
      // the long run (IOASID_FUZZ=long) runs each property for minutes
      testTimeout: process.env['IOASID_FUZZ'] === 'long' ? 3_600_000 : 60_000,
    },
  }),
);
