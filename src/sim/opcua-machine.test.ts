import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { OVER_TEMPERATURE_MARGIN_C, SimulatedPlc, parseOpcUaMachineArgs } from './opcua-machine.ts';
import type { Oven, Press } from './plant-physics.ts';

/** Advances in 100 ms steps, as the server's tick does. */
function run(plc: SimulatedPlc, ms: number): void {
  for (let t = 0; t < ms; t += 100) plc.advance(100);
}

describe('SimulatedPlc (oven)', () => {
  it('heats only in Execute and cools toward ambient once held', () => {
    const plc = new SimulatedPlc({ kind: 'oven', initialState: 'Idle', actingMs: 500 });
    const oven = plc.physics as Oven;
    run(plc, 10_000);
    assert.equal(oven.trueTemperature, 22, 'no heating in Idle');
    assert.equal(plc.read('Power'), 0);
    assert.ok(plc.command('Start').ok);
    run(plc, 500);
    assert.equal(plc.packml.state, 'Execute');
    run(plc, 10_000);
    const hot = oven.trueTemperature;
    assert.ok(hot > 35, `heated to ${hot}`);
    assert.ok(plc.command('Hold').ok);
    run(plc, 10_000);
    assert.equal(plc.packml.state, 'Held');
    assert.equal(plc.read('Power'), 0);
    assert.ok(oven.trueTemperature < hot, 'cools while held');
  });

  it('raises OverTemperature above Setpoint + 15 °C and clears it below', () => {
    const plc = new SimulatedPlc({ kind: 'oven', seed: 3 });
    run(plc, 300_000);
    assert.equal(plc.overTemperature, false);
    assert.ok(plc.write('Setpoint', 100).ok);
    plc.advance(100);
    const oven = plc.physics as Oven;
    assert.ok(oven.trueTemperature > 100 + OVER_TEMPERATURE_MARGIN_C);
    assert.equal(plc.overTemperature, true);
    run(plc, 600_000);
    assert.equal(plc.overTemperature, false);
  });

  it('counts a batch per door cycle begun in Execute, good when the oven was at temperature', () => {
    const plc = new SimulatedPlc({ kind: 'oven' });
    const oven = plc.physics as Oven;
    const cycle = (): [number, number] => {
      const before: [number, number] = [plc.total, plc.good];
      oven.setDoor(true);
      plc.advance(100);
      oven.setDoor(false);
      plc.advance(100);
      return [plc.total - before[0], plc.good - before[1]];
    };
    assert.deepEqual(cycle(), [1, 0], 'cold oven: a bad batch');
    run(plc, 600_000);
    assert.deepEqual(cycle(), [1, 1], 'at temperature: a good one');
    plc.command('Stop');
    assert.deepEqual(cycle(), [0, 0], 'no batch outside Execute');
  });
});

describe('SimulatedPlc (press)', () => {
  it('strokes only in Execute and counts every stroke', () => {
    const plc = new SimulatedPlc({ kind: 'press', initialState: 'Idle' });
    run(plc, 10_000);
    assert.equal(plc.read('Strokes'), 0);
    assert.equal(plc.read('State'), 'Idle');
    plc.command('Start');
    run(plc, 20_500);
    const strokes = plc.read('Strokes') as number;
    assert.ok(strokes >= 9 && strokes <= 10, `${strokes} strokes in 20 s at 30/min`);
    assert.equal(plc.total, strokes);
    plc.command('Suspend');
    run(plc, 10_000);
    assert.equal(plc.read('Strokes'), strokes, 'no strokes while suspended');
  });

  it('reports a jam and counts the stroke that jammed as not good', () => {
    const plc = new SimulatedPlc({ kind: 'press', seed: 1 });
    const press = plc.physics as Press;
    press.jam(5_000);
    plc.advance(100);
    assert.equal(plc.jammed, true);
    run(plc, 5_000);
    assert.equal(plc.jammed, false);
    assert.equal(plc.good, plc.total, 'a jam without a stroke costs no part');
    const jamming = new SimulatedPlc({ kind: 'press', jamProbability: 1 });
    run(jamming, 2_100);
    assert.equal(jamming.total, 1);
    assert.equal(jamming.good, 0);
    assert.equal(jamming.jammed, true);
  });
});

describe('parseOpcUaMachineArgs', () => {
  it('fills in defaults and a PKI folder per machine under the data folder', () => {
    const r = parseOpcUaMachineArgs({ kind: 'press' }, '/data');
    assert.ok(r.ok);
    assert.deepEqual(r.options, {
      kind: 'press',
      machineId: 'press-1',
      port: 0,
      host: '127.0.0.1',
      seed: 1,
      pkiDir: path.join('/data', 'sim-opcua', 'press-1'),
      initialState: 'Execute',
      items: 0,
      itemIntervalMs: 100,
      allowAnonymous: true,
      requireTrustedClients: false,
    });
  });

  it('takes security lists and refuses what it does not know', () => {
    const ok = parseOpcUaMachineArgs({
      securityModes: 'None,SignAndEncrypt',
      securityPolicies: 'Basic256Sha256',
    });
    assert.ok(ok.ok);
    assert.deepEqual(ok.options.securityModes, ['None', 'SignAndEncrypt']);
    const cases: [Parameters<typeof parseOpcUaMachineArgs>[0], RegExp][] = [
      [{ kind: 'lathe' }, /--kind lathe: oven or press/],
      [{ id: 'oven 1' }, /--id oven 1/],
      [{ port: '70000' }, /--port 70000/],
      [{ items: '-1' }, /--items -1/],
      [{ itemIntervalMs: '5' }, /--item-interval-ms 5/],
      [{ initialState: 'Running' }, /--initial-state Running/],
      [{ securityModes: 'None,Encrypt' }, /--security-modes Encrypt: one of None, Sign, SignAndEncrypt/],
      [{ securityPolicies: 'Basic128Rsa15' }, /--security-policies Basic128Rsa15/],
    ];
    for (const [args, message] of cases) {
      const r = parseOpcUaMachineArgs(args);
      assert.equal(r.ok, false);
      assert.match(r.ok ? '' : r.message, message);
    }
  });
});
