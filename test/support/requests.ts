/** V2 request bodies shared by the test areas that run the same small models. */

/** The body of a V2 JSON request for `buildScaledLinearModel` (`linearModel` in the fixtures): rows of 4 features. */
export function linearRequest(rows: readonly (readonly number[])[]): {
  inputs: { name: 'x'; datatype: 'FP32'; shape: number[]; data: number[] }[];
} {
  return { inputs: [{ name: 'x', datatype: 'FP32', shape: [rows.length, 4], data: rows.flat() }] };
}
