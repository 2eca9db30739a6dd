/**
 * Worker module for examples/batch/bulk-quotes.ts: a CPU-bound Monte Carlo of price paths (geometric
 * random walk with a fixed-seed generator). Plain ESM so piscina's worker threads load it as is.
 */
export default function simulate({ start, paths, steps, volatility, seed = 7 }) {
  let state = seed >>> 0;
  const uniform = () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return (state + 1) / 4294967297;
  };
  let above = 0;
  for (let p = 0; p < paths; p++) {
    let price = start;
    for (let s = 0; s < steps; s++) {
      // Box-Muller: one standard normal draw per step.
      const z = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
      price *= Math.exp(volatility * z - (volatility * volatility) / 2);
    }
    if (price > start) above++;
  }
  return above / paths;
}
