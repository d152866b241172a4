/**
 * Powers of two as a table: `POW2[n]` = 2^n for 0 ≤ n < 64. The model's walk and fetch paths
 * use it instead of `2 ** n` with a variable `n`, which V8 compiles to a call to `Math.pow`.
 */
export const POW2: Float64Array = Float64Array.from({ length: 64 }, (_, n) => 2 ** n);
