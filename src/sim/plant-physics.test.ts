import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LoadGenerator, Oven, Press, seededRandom } from './plant-physics.ts';

describe('seededRandom', () => {
  it('repeats its sequence for the same seed and differs for another', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const c = seededRandom(43);
    const sa = Array.from({ length: 50 }, () => a.next());
    assert.deepEqual(
      sa,
      Array.from({ length: 50 }, () => b.next()),
    );
    assert.notDeepEqual(
      sa,
      Array.from({ length: 50 }, () => c.next()),
    );
    assert.ok(sa.every((x) => x >= 0 && x < 1));
  });

  it('draws normals with mean ≈ 0 and deviation ≈ 1', () => {
    const r = seededRandom(7);
    const xs = Array.from({ length: 20_000 }, () => r.normal());
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length);
    assert.ok(Math.abs(mean) < 0.03, `mean ${mean}`);
    assert.ok(Math.abs(sd - 1) < 0.03, `sd ${sd}`);
  });
});

/** An oven whose door the simulation never opens by itself (the test sets it). */
function oven(seed = 1): Oven {
  return new Oven({ random: seededRandom(seed), autoDoor: false });
}

function run(o: { advance(dt: number): void }, seconds: number): void {
  for (let i = 0; i < seconds; i++) o.advance(1000);
}

describe('Oven', () => {
  it('heats from ambient at full power and settles on the setpoint without overshoot', () => {
    const o = oven();
    assert.equal((o.read('Temperature') as number) < 23, true);
    o.advance(1000);
    assert.equal(o.read('Power'), 100);
    let prev = o.trueTemperature;
    let max = prev;
    for (let s = 0; s < 600; s++) {
      o.advance(1000);
      assert.ok(o.trueTemperature >= prev - 1e-9, 'rises monotonically while below the setpoint');
      prev = o.trueTemperature;
      max = Math.max(max, prev);
    }
    assert.ok(Math.abs(o.trueTemperature - 180) < 0.05, `settled at ${o.trueTemperature}`);
    assert.ok(max <= 180 + 1e-6, `overshoot to ${max}`);
    // Holding 180 °C against losses takes the feedforward share: (180 − 22) / (2 · 300) = 26.3 %.
    assert.ok(Math.abs((o.read('Power') as number) - 26.3) < 0.5, `power ${o.read('Power')}`);
  });

  it('approaches a changed setpoint with first-order inertia: the gap shrinks by the same factor each second', () => {
    const o = oven();
    run(o, 600);
    assert.deepEqual(o.write('Setpoint', 179), { ok: true, value: 179 });
    const gaps: number[] = [];
    for (let s = 0; s < 6; s++) {
      o.advance(1000);
      gaps.push(o.trueTemperature - 179);
    }
    const ratios = gaps.slice(1).map((g, i) => g / gaps[i]!);
    assert.ok(ratios[0]! > 0.5 && ratios[0]! < 0.95, `ratio ${ratios[0]}`);
    for (const r of ratios) assert.ok(Math.abs(r - ratios[0]!) < 1e-6, `ratios ${ratios.join(', ')}`);
  });

  it('cools toward ambient with the heater off after a large setpoint cut, then holds the new setpoint', () => {
    const o = oven();
    run(o, 600);
    o.write('Setpoint', 150);
    const above: number[] = [];
    for (let s = 0; s < 20; s++) {
      o.advance(1000);
      assert.equal(o.read('Power'), 0);
      above.push(o.trueTemperature - 22);
    }
    // Heater off: T − T_amb decays with the loss time constant τ = 300 s.
    for (let i = 1; i < above.length; i++) {
      assert.ok(Math.abs(above[i]! / above[i - 1]! - Math.exp(-1 / 300)) < 1e-9, `step ${i}`);
    }
    run(o, 600);
    assert.ok(Math.abs(o.trueTemperature - 150) < 0.05, `${o.trueTemperature}`);
  });

  it('loses heat with the door open: the temperature falls below the setpoint although the heater works harder', () => {
    const o = oven();
    run(o, 600);
    const closedPower = o.read('Power') as number;
    o.setDoor(true);
    assert.equal(o.read('Door'), true);
    run(o, 300);
    assert.ok(o.trueTemperature < 178, `door open: ${o.trueTemperature}`);
    assert.equal(o.read('Power'), 100);
    assert.ok(closedPower < 100);
    o.setDoor(false);
    run(o, 600);
    assert.ok(Math.abs(o.trueTemperature - 180) < 0.05);
  });

  it('gives the same result for one long step as for many short ones (a clock jump is safe)', () => {
    const a = new Oven({ random: seededRandom(3) });
    const b = new Oven({ random: seededRandom(3) });
    a.advance(3 * 3600_000);
    run(b, 3 * 3600);
    assert.equal(a.read('Door'), b.read('Door'));
    assert.ok(
      Math.abs(a.trueTemperature - b.trueTemperature) < 1e-9,
      `${a.trueTemperature} vs ${b.trueTemperature}`,
    );
  });

  it('reads the same values for the same seed and steps (deterministic)', () => {
    const a = new Oven({ random: seededRandom(9) });
    const b = new Oven({ random: seededRandom(9) });
    for (let i = 0; i < 2000; i++) {
      a.advance(500);
      b.advance(500);
      assert.equal(a.read('Temperature'), b.read('Temperature'));
      assert.equal(a.read('Door'), b.read('Door'));
    }
  });

  it('opens its door now and then by itself (about once per 10 minutes)', () => {
    const o = new Oven({ random: seededRandom(5) });
    let openings = 0;
    let wasOpen = false;
    for (let s = 0; s < 6 * 3600; s++) {
      o.advance(1000);
      const open = o.read('Door') as boolean;
      if (open && !wasOpen) openings++;
      wasOpen = open;
    }
    assert.ok(openings >= 15 && openings <= 60, `${openings} openings in 6 h`);
  });

  it('accepts writes to Setpoint and Recipe/Id only, within range and of the right type', () => {
    const o = oven();
    assert.deepEqual(o.write('Recipe/Id', 'BREAD-7'), { ok: true, value: 'BREAD-7' });
    assert.equal(o.read('Recipe/Id'), 'BREAD-7');
    assert.equal((o.write('Temperature', 100) as { reason: string }).reason, 'read-only');
    assert.equal((o.write('Setpoint', 400) as { reason: string }).reason, 'out-of-range');
    assert.equal((o.write('Setpoint', 'hot') as { reason: string }).reason, 'wrong-type');
    assert.equal((o.write('Setpoint', Number.NaN) as { reason: string }).reason, 'wrong-type');
    assert.equal((o.write('Nope', 1) as { reason: string }).reason, 'unknown-metric');
    assert.equal(o.read('Setpoint'), 180);
  });
});

describe('Press', () => {
  it('runs at TargetStrokesPerMinute: strokes count up, CycleTime is 60/spm ± 3 %, State Execute', () => {
    const p = new Press({ random: seededRandom(1), jamProbability: 0 });
    assert.equal(p.read('State'), 'Execute');
    run(p, 60);
    const strokes = p.read('Strokes') as number;
    assert.ok(strokes >= 29 && strokes <= 31, `${strokes} strokes in 60 s at 30/min`);
    const ct = p.read('CycleTime') as number;
    assert.ok(ct >= 2 * 0.97 - 1e-9 && ct <= 2 * 1.03 + 1e-9, `cycle time ${ct}`);
  });

  it('goes Idle at 0 strokes per minute and stops counting; back to Execute when restarted', () => {
    const p = new Press({ random: seededRandom(1), jamProbability: 0 });
    run(p, 10);
    assert.deepEqual(p.write('TargetStrokesPerMinute', 0), { ok: true, value: 0 });
    const strokes = p.read('Strokes');
    run(p, 30);
    assert.equal(p.read('State'), 'Idle');
    assert.equal(p.read('Strokes'), strokes);
    assert.ok((p.read('Pressure') as number) < 8);
    p.write('TargetStrokesPerMinute', 60);
    run(p, 10);
    assert.equal(p.read('State'), 'Execute');
    assert.ok((p.read('Strokes') as number) >= (strokes as number) + 9);
  });

  it('is Stopped while jammed, without strokes, then resumes', () => {
    const p = new Press({ random: seededRandom(2), jamProbability: 0 });
    p.jam(5000);
    assert.equal(p.read('State'), 'Stopped');
    run(p, 4);
    assert.equal(p.read('Strokes'), 0);
    run(p, 5);
    assert.equal(p.read('State'), 'Execute');
    assert.ok((p.read('Strokes') as number) >= 1);
  });

  it('builds pressure up to the recipe peak during a stroke', () => {
    const p = new Press({ random: seededRandom(4), jamProbability: 0 });
    p.write('Recipe/PeakPressure', 120);
    let max = 0;
    for (let i = 0; i < 400; i++) {
      p.advance(50);
      max = Math.max(max, p.read('Pressure') as number);
    }
    assert.ok(max > 110 && max < 125, `peak ${max}`);
    assert.equal((p.write('Recipe/PeakPressure', 10) as { reason: string }).reason, 'out-of-range');
    assert.equal((p.write('Strokes', 0) as { reason: string }).reason, 'read-only');
  });
});

describe('LoadGenerator', () => {
  it('has N Double metrics that all change on every advance', () => {
    const g = new LoadGenerator(100, seededRandom(1));
    assert.equal(g.metrics.length, 100);
    assert.equal(g.metrics[0]!.name, 'Value 0001');
    assert.ok(g.metrics.every((m) => m.datatype === 'Double'));
    const before = g.metrics.map((m) => g.read(m.name));
    g.advance(100);
    const after = g.metrics.map((m) => g.read(m.name));
    assert.ok(after.every((v, i) => v !== before[i]));
    assert.equal((g.write('Value 0001', 1) as { reason: string }).reason, 'read-only');
  });
});
