import { describe, expect, it } from 'vitest';
import { RateAdaptation } from '../../src/ratelimit/rate-adaptation.js';

const window = { limit: 10, intervalMs: 1000, marginMs: 40, windowMs: 1040 };

describe('RateAdaptation (AIMD)', () => {
  it('starts at the full rate', () => {
    const adaptation = new RateAdaptation(window);
    expect(adaptation.rateFactor).toBe(1);
    expect(adaptation.factorAt(0)).toBe(1);
    expect(adaptation.limitAt(0, 1)).toBe(10);
    const fractional = new RateAdaptation({ limit: 2.5, intervalMs: 100, marginMs: 0, windowMs: 100 });
    expect(fractional.limitAt(0, 1)).toBe(2.5); // the configured limit as is, not rounded down
  });

  it('drops to 80%, ignores reports within intervalMs of the drop, and drops again from the recovered rate', () => {
    const adaptation = new RateAdaptation(window);
    expect(adaptation.slowDown(5000)).toBe(true);
    expect(adaptation.rateFactor).toBe(0.8);
    expect(adaptation.slowDown(5999)).toBe(false);
    expect(adaptation.rateFactor).toBe(0.8);
    expect(adaptation.slowDown(6000)).toBe(true); // exactly intervalMs later: a new event
    expect(adaptation.rateFactor).toBeCloseTo((0.8 + 0.02) * 0.8, 12);
  });

  it('recovers by 2% of the configured rate per intervalMs, then stays at 1', () => {
    const adaptation = new RateAdaptation(window);
    adaptation.slowDown(1000);
    expect(adaptation.factorAt(1000)).toBe(0.8);
    expect(adaptation.factorAt(1500)).toBeCloseTo(0.81, 12);
    expect(adaptation.factorAt(3000)).toBeCloseTo(0.84, 12);
    expect(adaptation.rateFactor).toBe(0.8); // reading does not move the drop
    expect(adaptation.factorAt(11_000)).toBe(1);
    expect(adaptation.rateFactor).toBe(1);
    expect(adaptation.factorAt(11_001)).toBe(1);
  });

  it('never drops below 10% of the configured rate', () => {
    const adaptation = new RateAdaptation(window);
    for (let i = 0; i < 40; i++) adaptation.slowDown(i * 1000);
    expect(adaptation.rateFactor).toBe(0.1);
    expect(adaptation.factorAt(39_000)).toBe(0.1);
  });

  it('lowers the units per window, never below one unit or the weight of the call', () => {
    const adaptation = new RateAdaptation(window);
    adaptation.slowDown(0);
    expect(adaptation.limitAt(0, 1)).toBe(8);
    expect(adaptation.limitAt(0, 9)).toBe(9);
    expect(adaptation.limitAt(2500, 1)).toBe(8); // floor(10 × 0.85)
    for (let i = 1; i < 40; i++) adaptation.slowDown(i * 1000);
    expect(adaptation.limitAt(39_000, 0.5)).toBe(1); // floor(10 × 0.1) = 1
    const small = new RateAdaptation({ limit: 2, intervalMs: 100, marginMs: 0, windowMs: 100 });
    for (let i = 0; i < 4; i++) small.slowDown(i * 100); // 0.8 → 0.656 → 0.5408 → 0.44864
    expect(small.limitAt(300, 0.5)).toBe(1); // floor(2 × 0.45) = 0, raised to one unit
    expect(small.limitAt(300, 0.25)).toBe(1);
    const fractional = new RateAdaptation({ limit: 0.5, intervalMs: 100, marginMs: 0, windowMs: 100 });
    fractional.slowDown(0);
    expect(fractional.limitAt(0, 0.25)).toBe(0.5); // one unit would be more than the limit itself
  });
});

describe('RateAdaptation.isLate', () => {
  it('a task more than marginMs/2 slower than the fastest, and shorter than the window, is late', () => {
    const adaptation = new RateAdaptation(window);
    expect(adaptation.isLate(0, 0)).toBe(false); // fastest 0
    expect(adaptation.isLate(0, 21)).toBe(true); // 21 - 0.21 > 20
    expect(adaptation.isLate(100, 115)).toBe(false); // 15 - 0.3579 < 20
  });

  it('exactly marginMs/2 slower is not late', () => {
    const adaptation = new RateAdaptation({ limit: 10, intervalMs: 1000, marginMs: 39.6, windowMs: 1039.6 });
    adaptation.isLate(0, 0);
    expect(adaptation.isLate(0, 20)).toBe(false); // 20 - 0.2 = 19.8, not > 19.8
  });

  it('a task that took the whole window or longer is not late (its unit has expired anyway)', () => {
    const adaptation = new RateAdaptation(window);
    expect(adaptation.isLate(0, 1040)).toBe(false);
    const other = new RateAdaptation(window);
    expect(other.isLate(0, 1039)).toBe(true);
  });

  it('the baseline drifts up 1% of the difference per task, and drops at once to a faster task', () => {
    const adaptation = new RateAdaptation(window);
    expect(adaptation.isLate(0, 100)).toBe(true); // fastest 0 → 1
    expect(adaptation.isLate(0, 22)).toBe(true); // 22 - (1 + 0.21) > 20 → fastest 1.21
    expect(adaptation.isLate(0, 21)).toBe(false); // 21 - (1.21 + 0.1979) = 19.59
    expect(adaptation.isLate(0, 0)).toBe(false); // fastest 0
    expect(adaptation.isLate(0, 20.5)).toBe(true); // 20.5 - 0.205 > 20
    const drifting = new RateAdaptation(window);
    expect(drifting.isLate(0, 1000)).toBe(true); // fastest 0 → 10
    expect(drifting.isLate(0, 30.3)).toBe(true); // 30.3 - (10 + 20.3 × 0.01) = 20.097 > 20
  });
});
