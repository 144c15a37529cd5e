/**
 * Float32 rounding of split thresholds, for the formats that store them as float32 (ONNX
 * tree ensembles, XGBoost JSON): the largest float32 that is <= t, so a float32 comparison
 * `x <= threshold` sends the same rows left as kiln's double threshold does.
 */
export function float32AtOrBelow(t: number): number {
  const f = Math.fround(t);
  if (f <= t || Number.isNaN(t)) return f;
  const buf = new Float32Array([f]);
  const bits = new Int32Array(buf.buffer);
  if (f > 0) bits[0]! -= 1;
  else if (f === 0)
    bits[0] = 0x80000001 | 0; // just below zero: the smallest negative subnormal
  else bits[0]! += 1;
  return buf[0]!;
}
