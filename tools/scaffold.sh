#!/usr/bin/env bash
# Writes the per-package boilerplate (package.json is written by hand).
set -euo pipefail
dir=$1
cat > "$dir/tsconfig.json" <<'J'
{
  "extends": "../../tsconfig.base.json",
  "compilerOptions": {
    "noEmit": true,
    "customConditions": ["@ioasid/source"]
  },
  "include": ["src", "test", "bench", "*.ts"]
}
J
cat > "$dir/tsconfig.build.json" <<'J'
{
  "extends": "../../tsconfig.base.json",
  "compilerOptions": {
    "rootDir": "src",
    "outDir": "dist",
    "customConditions": []
  },
  "include": ["src"],
  "exclude": ["src/**/*.test.ts", "src/**/*.test-util.ts", "src/test"]
}
J
cat > "$dir/vitest.config.ts" <<'J'
import { defineConfig } from 'vitest/config';
import { sourceConditions } from '../../tools/vitest.shared.js';

export default defineConfig(sourceConditions());
J
