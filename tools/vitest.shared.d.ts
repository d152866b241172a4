import type { UserConfig } from 'vitest/config';
export declare function sourceConditions(): UserConfig;
