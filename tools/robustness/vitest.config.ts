import { defineConfig } from 'vitest/config';
import { sourceConditions } from '../../tools/vitest.shared.js';

export default defineConfig(sourceConditions());
